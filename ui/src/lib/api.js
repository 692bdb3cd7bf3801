// The gateway's HTTP API as the UI uses it. Same origin: no CORS, relative URLs.
import { auth, keyRejected } from './auth.js'
import { sseData } from './sse.js'

/** An error answered by the API, carrying OpenAI's envelope fields. */
export class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.type = error.type ?? null
    this.code = error.code ?? null
    this.param = error.param ?? null
  }
}

async function errorFrom(response) {
  let body = null
  try {
    body = await response.json()
  } catch {
    // not JSON (a proxy's HTML page, say): the status alone
  }
  return new ApiError(response.status, body?.error ?? { message: `HTTP ${response.status} ${response.statusText}` })
}

/**
 * A client for the gateway. `fetch`, `getKey` and `onUnauthorized` are injectable for tests;
 * the app uses the default instance `api` below.
 */
export function createClient({
  fetch: fetchImpl = (...args) => globalThis.fetch(...args),
  getKey = () => auth.key,
  onUnauthorized = keyRejected,
  base = '',
} = {}) {
  async function send(method, path, { json, form, signal, headers = {} } = {}) {
    const h = { Accept: 'application/json', ...headers }
    const key = getKey()
    if (key) h.Authorization = `Bearer ${key}`
    let body
    if (json !== undefined) {
      h['Content-Type'] = 'application/json'
      body = JSON.stringify(json)
    } else if (form !== undefined) {
      body = form // the browser sets the multipart boundary
    }
    const response = await fetchImpl(base + path, { method, headers: h, body, signal })
    if (response.status === 401) onUnauthorized()
    if (!response.ok) throw await errorFrom(response)
    return response
  }

  async function getJSON(path, opts) {
    return (await send('GET', path, opts)).json()
  }

  async function postJSON(path, json, opts = {}) {
    return (await send('POST', path, { ...opts, json })).json()
  }

  const enc = encodeURIComponent
  // Document ids may hold slashes (runbooks/oom.md): the route takes them as a path.
  const encPath = (id) => id.split('/').map(enc).join('/')

  return {
    send,
    listCollections: async () => (await getJSON('/v1/collections')).data,
    createCollection: (name) => postJSON('/v1/collections', { name }),
    deleteCollection: async (name) => (await send('DELETE', `/v1/collections/${enc(name)}`)).json(),
    listDocuments: async (name) => (await getJSON(`/v1/collections/${enc(name)}/documents`)).data,
    deleteDocument: async (name, documentId) =>
      (await send('DELETE', `/v1/collections/${enc(name)}/documents/${encPath(documentId)}`)).json(),
    upload(name, files) {
      const form = new FormData()
      for (const f of files) form.append('file', f, f.name)
      return send('POST', `/v1/collections/${enc(name)}/documents`, { form }).then((r) => r.json())
    },
    job: (jobId) => getJSON(`/v1/jobs/${enc(jobId)}`),
    retrieve: (body) => postJSON('/v1/retrieve', body),

    /**
     * The passages of one document in reading order (the index has no "read a document" call:
     * a search filtered to the document returns its chunks, as the server's get_document tool does).
     */
    async documentPassages(collection, documentId, { query, limit = 50 } = {}) {
      const r = await postJSON('/v1/retrieve', {
        query: query || documentId,
        collection,
        top_k: limit,
        mode: 'dense', // dense ranks every chunk of the document; BM25 would drop those without a query term
        filters: { document_id: documentId },
      })
      return sortPassages(r.results)
    },

    listAnalyses(params = {}) {
      const q = new URLSearchParams()
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v)
      const qs = q.toString()
      return getJSON(`/v1/rca/analyses${qs ? `?${qs}` : ''}`)
    },
    getAnalysis: (id) => getJSON(`/v1/rca/analyses/${enc(id)}`),

    /**
     * Stream a chat completion. `onDelta(text)` gets each piece of the answer; the promise resolves
     * to `{ content, citations, finishReason, retrievalQuery }` once `[DONE]` arrives (`retrievalQuery`:
     * what a follow-up question searched with, when the gateway searched with the conversation). Errors inside the stream
     * (`data: {"error": ...}`) reject with an ApiError.
     */
    async chatStream({ model, messages, maxTokens, temperature, signal, onDelta = () => {} }) {
      const body = { model, messages, stream: true }
      if (maxTokens) body.max_tokens = maxTokens
      if (temperature !== undefined) body.temperature = temperature
      const response = await send('POST', '/v1/chat/completions', {
        json: body,
        signal,
        headers: { Accept: 'text/event-stream' },
      })
      let content = ''
      let citations = []
      let finishReason = null
      let retrievalQuery = null
      for await (const data of sseData(response.body)) {
        if (data === '[DONE]') break
        let event
        try {
          event = JSON.parse(data)
        } catch {
          continue
        }
        if (event.error) throw new ApiError(500, event.error)
        for (const choice of event.choices || []) {
          const piece = choice.delta?.content
          if (piece) {
            content += piece
            onDelta(piece, content)
          }
          if (choice.finish_reason) finishReason = choice.finish_reason
        }
        if (Array.isArray(event.citations)) citations = event.citations
        if (typeof event.retrieval_query === 'string') retrievalQuery = event.retrieval_query
      }
      return { content, citations, finishReason, retrievalQuery }
    },
  }
}

/** Chunks in reading order: by page, then by their ordinal (chunk ids end in `#<n>`). */
export function sortPassages(hits) {
  const ordinal = (h) => {
    const m = /#(\d+)$/.exec(h.chunk_id || '')
    return m ? Number(m[1]) : Number(h.metadata?.start ?? 0)
  }
  return [...hits].sort((a, b) => (a.page ?? 0) - (b.page ?? 0) || ordinal(a) - ordinal(b))
}

export const api = createClient()
