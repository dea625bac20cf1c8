import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Tailwind 3 for the page's own components (no component library: its default colours
 * failed WCAG AA contrast and its chart legends failed list markup, see docs/dashboard.md).
 */
/** @type {import('tailwindcss').Config} */
export default {
  content: [here('./index.html'), here('./src/**/*.{ts,tsx}')],
  theme: { extend: {} },
  plugins: [],
};
