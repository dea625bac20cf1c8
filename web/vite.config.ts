import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * The dashboard page: built into dist/web, served by `sentinel serve` at `/` and
 * `/assets/*`. Everything is bundled (no CDN, no web fonts), and nothing inline:
 * the server's CSP is `script-src 'self'; style-src 'self'`.
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const outDir = fileURLToPath(new URL('../dist/web', import.meta.url));

/**
 * Writes `<file>.gz` (gzip level 9) next to each text file of the build, when
 * smaller: `sentinel serve` sends it with `Content-Encoding: gzip` to clients
 * that accept gzip (src/server/http.ts), without compressing per request.
 */
const COMPRESSIBLE = /\.(html|js|mjs|css|json|map|svg|txt)$/i;
function precompressGzip(): Plugin {
  return {
    name: 'sentinel-precompress-gzip',
    apply: 'build',
    closeBundle() {
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          const path = join(dir, entry.name);
          if (entry.isDirectory()) walk(path);
          else if (entry.isFile() && COMPRESSIBLE.test(entry.name)) {
            const bytes = readFileSync(path);
            const gz = gzipSync(bytes, { level: 9 });
            if (gz.length < bytes.length) writeFileSync(`${path}.gz`, gz);
          }
        }
      };
      walk(outDir);
    },
  };
}

export default defineConfig({
  root,
  base: '/',
  plugins: [react(), precompressGzip()],
  css: { postcss: root },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: 'assets',
    // The polyfill would be an inline script; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    // Never inline assets as data: URLs: every asset stays a file served with its own cache headers.
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    // `npm run dev:web` with `sentinel serve` running on the default port.
    proxy: { '/api': 'http://127.0.0.1:9464' },
  },
});
