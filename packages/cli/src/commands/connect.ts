import type { Io } from '../io.js';
export async function connectCommand(_args: string[], _io: Io): Promise<number> {
  return 2;
}
