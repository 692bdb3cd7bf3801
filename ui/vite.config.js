import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the gateway at /ui/ (service/ui.py): hashed files under /ui/assets/ are cached for a
// year; index.html is revalidated on every load.
export default defineConfig({
  base: '/ui/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev`: the Vite dev server proxies the API to a running gateway.
    proxy: { '/v1': process.env.RAGSERVE_URL || 'http://127.0.0.1:8000' },
  },
  test: {
    environment: 'happy-dom',
    include: ['tests/unit/**/*.test.js'],
    restoreMocks: true,
  },
})
