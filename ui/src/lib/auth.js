// The API key the browser sends as `Authorization: Bearer <key>`.
// Kept in sessionStorage (gone when the tab closes) unless the user asks to remember it on this
// device (localStorage). Never put in a URL or a cookie: the gateway reads only the header.
import { reactive } from 'vue'

const KEY = 'ragserve.apiKey'

function storage(kind) {
  try {
    return globalThis[kind] ?? null
  } catch {
    return null
  }
}

function load() {
  const remembered = storage('localStorage')?.getItem(KEY)
  if (remembered) return { key: remembered, remember: true }
  return { key: storage('sessionStorage')?.getItem(KEY) || '', remember: false }
}

export const auth = reactive({
  ...load(),
  // Set when the server answered 401: the app then asks for a key.
  required: false,
  rejected: false,
})

export function saveKey(key, remember) {
  auth.key = key.trim()
  auth.remember = remember
  auth.rejected = false
  storage('localStorage')?.removeItem(KEY)
  storage('sessionStorage')?.removeItem(KEY)
  if (auth.key) storage(remember ? 'localStorage' : 'sessionStorage')?.setItem(KEY, auth.key)
}

export function forgetKey() {
  saveKey('', false)
}

/** Called by the API layer on a 401: ask for a (new) key. */
export function keyRejected() {
  auth.required = true
  auth.rejected = Boolean(auth.key)
}
