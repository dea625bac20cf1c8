import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The dashboard page: built into dist/web, served by `sentinel serve` at `/` and
 * `/assets/*`. Everything is bundled (no CDN, no web fonts), and nothing inline:
 * the server's CSP is `script-src 'self'; style-src 'self'`.
 */
const TREE_SHAKEABLE = /node_modules\/(@tremor\/react|date-fns|react-day-picker|@headlessui\/react|@floating-ui|tailwind-merge)\//;
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  css: { postcss: root },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // The polyfill would be an inline script; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    // Never inline assets as data: URLs (the CSP has no data: for images or fonts).
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
    rolldownOptions: {
      // Tremor's package.json does not declare `sideEffects: false`, so its barrel
      // would drag in every component (date pickers, date-fns locales...). These
      // packages have no import-time side effects: let unused modules drop out.
      treeshake: { moduleSideEffects: (id: string) => !TREE_SHAKEABLE.test(id) },
    },
  },
  server: {
    // `npm run dev:web` with `sentinel serve` running on the default port.
    proxy: { '/api': 'http://127.0.0.1:9464' },
  },
});
