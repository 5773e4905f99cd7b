import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Node's modules: neither the sans-I/O core nor the browser entry may import them. */
const NODE_MODULES = [
  'node:*',
  'fs',
  'net',
  'http',
  'https',
  'tls',
  'zlib',
  'crypto',
  'stream',
  'events',
  'buffer',
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Type tests declare parameters only to check their types.
    files: ['packages/*/test/types/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-vars': 'off' },
  },
  {
    // The core is sans-I/O: no Node modules, no timers, no process globals (STYLE.md).
    files: ['packages/switchyard/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: NODE_MODULES,
              message: 'src/core is sans-I/O: no Node modules.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        'setTimeout',
        'setInterval',
        'setImmediate',
        'process',
        'Buffer',
        'require',
      ],
    },
  },
  {
    // switchyard/browser is bundled for pages and workers: no Node module or Node-only global,
    // and nothing of the library but core (.dependency-cruiser.cjs says the same for depcruise).
    files: ['packages/switchyard/src/browser/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: NODE_MODULES,
              message: 'switchyard/browser runs in browsers: no Node modules.',
            },
            {
              group: ['../node/*', '../pubsub/*', '../ws/*', '../index.js'],
              message: 'switchyard/browser may import src/core only.',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'setImmediate', 'process', 'Buffer', 'require'],
    },
  },
);
