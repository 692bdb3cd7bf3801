// A small i18n of our own: two languages, flat keys, `{name}` placeholders, English fallback.
// (vue-i18n would add ~40 KB and a Node 22 engine requirement for what fits in a page of code.)
import { ref, computed } from 'vue'

import en from '../locales/en.js'
import zh from '../locales/zh.js'

export const MESSAGES = { en, zh }
export const LOCALES = [
  { code: 'en', label: 'English' },
  { code: 'zh', label: '中文' },
]
const STORAGE_KEY = 'ragserve.locale'

function initialLocale() {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY)
    if (saved && MESSAGES[saved]) return saved
  } catch {
    // storage may be disabled; fall through to the browser language
  }
  const lang = (globalThis.navigator?.language || 'en').toLowerCase()
  return lang.startsWith('zh') ? 'zh' : 'en'
}

export const locale = ref(initialLocale())

export function setLocale(code) {
  if (!MESSAGES[code]) return
  locale.value = code
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, code)
  } catch {
    // not remembered: fine
  }
  if (globalThis.document) document.documentElement.lang = code === 'zh' ? 'zh-CN' : 'en'
}

/** Translate `key` in the current locale; `{name}` placeholders take `params.name`. */
export function t(key, params = {}) {
  const table = MESSAGES[locale.value] || en
  let text = table[key] ?? en[key] ?? key
  for (const [name, value] of Object.entries(params)) {
    text = text.replaceAll(`{${name}}`, String(value))
  }
  return text
}

/** Date and time in the current locale, or '' for a missing or invalid value. */
export function formatTime(value) {
  if (!value) return ''
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value)
  if (Number.isNaN(d.getTime())) return String(value)
  return d.toLocaleString(locale.value === 'zh' ? 'zh-CN' : 'en-GB', {
    dateStyle: 'medium',
    timeStyle: 'medium',
  })
}

export const i18n = {
  install(app) {
    app.config.globalProperties.$t = t
    app.provide('locale', computed(() => locale.value))
    setLocale(locale.value)
  },
}
