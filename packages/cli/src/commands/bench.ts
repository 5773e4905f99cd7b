import type { Io } from '../io.js';
export async function benchCommand(_args: string[], _io: Io): Promise<number> {
  return 2;
}
