import { describe, expect, it, vi } from 'vitest'

import { ApiError, createClient, sortPassages } from '../../src/lib/api.js'
import { CITATIONS, streamOf } from './helpers.js'

function jsonResponse(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function sse(events) {
  return events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`)
}

describe('createClient', () => {
  it('sends the key as a Bearer token and parses JSON', async () => {
    const fetch = vi.fn(async () => jsonResponse(200, { object: 'list', data: [{ name: 'default' }] }))
    const client = createClient({ fetch, getKey: () => 'k-123' })
    expect(await client.listCollections()).toEqual([{ name: 'default' }])
    const [url, init] = fetch.mock.calls[0]
    expect(url).toBe('/v1/collections')
    expect(init.headers.Authorization).toBe('Bearer k-123')
  })

  it('sends no Authorization header without a key', async () => {
    const fetch = vi.fn(async () => jsonResponse(200, { data: [] }))
    await createClient({ fetch, getKey: () => '' }).listCollections()
    expect(fetch.mock.calls[0][1].headers.Authorization).toBeUndefined()
  })

  it('turns the OpenAI error envelope into an ApiError and reports 401s', async () => {
    const onUnauthorized = vi.fn()
    const fetch = vi.fn(async () =>
      jsonResponse(401, { error: { message: 'incorrect API key provided', type: 'authentication_error', param: null, code: 'invalid_api_key' } }),
    )
    const client = createClient({ fetch, getKey: () => 'bad', onUnauthorized })
    const err = await client.listCollections().catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(401)
    expect(err.code).toBe('invalid_api_key')
    expect(err.message).toBe('incorrect API key provided')
    expect(onUnauthorized).toHaveBeenCalledOnce()
  })

  it('keeps slashes of document ids in the path and escapes the rest', async () => {
    const fetch = vi.fn(async () => jsonResponse(200, { deleted: true }))
    await createClient({ fetch }).deleteDocument('my col', 'runbooks/a b.md')
    expect(fetch.mock.calls[0][0]).toBe('/v1/collections/my%20col/documents/runbooks/a%20b.md')
    expect(fetch.mock.calls[0][1].method).toBe('DELETE')
  })

  it('uploads files as multipart field "file"', async () => {
    const fetch = vi.fn(async () => jsonResponse(202, { job_id: 'job-1', status: 'queued', files: ['a.md'] }))
    const r = await createClient({ fetch }).upload('default', [new File(['# A'], 'a.md')])
    expect(r.job_id).toBe('job-1')
    const body = fetch.mock.calls[0][1].body
    expect(body).toBeInstanceOf(FormData)
    expect(body.getAll('file').map((f) => f.name)).toEqual(['a.md'])
  })

  it('asks for a document by a dense search filtered to it, in reading order', async () => {
    const fetch = vi.fn(async () =>
      jsonResponse(200, { results: [{ chunk_id: 'd#2', page: null, text: 'c' }, { chunk_id: 'd#0', page: null, text: 'a' }, { chunk_id: 'd#1', page: null, text: 'b' }] }),
    )
    const passages = await createClient({ fetch }).documentPassages('default', 'd', { query: 'x' })
    expect(passages.map((p) => p.text)).toEqual(['a', 'b', 'c'])
    expect(JSON.parse(fetch.mock.calls[0][1].body)).toEqual({ query: 'x', collection: 'default', top_k: 50, mode: 'dense', filters: { document_id: 'd' } })
  })

  it('lists analyses with only the filters that are set', async () => {
    const fetch = vi.fn(async () => jsonResponse(200, { data: [], total: 0 }))
    await createClient({ fetch }).listAnalyses({ status: 'completed', alertname: '', limit: 50 })
    expect(fetch.mock.calls[0][0]).toBe('/v1/rca/analyses?status=completed&limit=50')
  })
})

describe('chatStream', () => {
  const chunk = (content, extra = {}) => ({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }], ...extra })

  it('streams deltas and takes citations from the final chunk', async () => {
    const final = { id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], citations: CITATIONS }
    const fetch = vi.fn(async () => new Response(streamOf(sse([chunk('Exit '), chunk('code 137 [1].'), final, '[DONE]'])), { status: 200 }))
    const seen = []
    const r = await createClient({ fetch }).chatStream({ model: 'rag/default', messages: [{ role: 'user', content: 'q' }], maxTokens: 64, onDelta: (p, all) => seen.push(all) })
    expect(seen).toEqual(['Exit ', 'Exit code 137 [1].'])
    expect(r).toEqual({ content: 'Exit code 137 [1].', citations: CITATIONS, finishReason: 'stop', retrievalQuery: null })
    const body = JSON.parse(fetch.mock.calls[0][1].body)
    expect(body).toEqual({ model: 'rag/default', messages: [{ role: 'user', content: 'q' }], stream: true, max_tokens: 64 })
  })

  it('reports what a follow-up searched with', async () => {
    const final = { id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], citations: CITATIONS, retrieval_query: 'What is exit code 137?\nAnd the fix?' }
    const fetch = vi.fn(async () => new Response(streamOf(sse([chunk('Raise the limit [1].'), final, '[DONE]'])), { status: 200 }))
    const r = await createClient({ fetch }).chatStream({ model: 'rag/default', messages: [{ role: 'user', content: 'And the fix?' }] })
    expect(r.retrievalQuery).toBe('What is exit code 137?\nAnd the fix?')
  })

  it('rejects with the error sent inside the stream', async () => {
    const fetch = vi.fn(async () => new Response(streamOf(sse([chunk('par'), { error: { message: 'engine died', type: 'server_error', code: 'stream_error' } }, '[DONE]'])), { status: 200 }))
    const err = await createClient({ fetch }).chatStream({ model: 'rag/default', messages: [] }).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.message).toBe('engine died')
    expect(err.code).toBe('stream_error')
  })

  it('rejects before streaming when the request is refused', async () => {
    const fetch = vi.fn(async () => jsonResponse(404, { error: { message: "collection 'x' does not exist", type: 'invalid_request_error', code: 'collection_not_found' } }))
    const err = await createClient({ fetch }).chatStream({ model: 'rag/x', messages: [] }).catch((e) => e)
    expect(err.status).toBe(404)
    expect(err.code).toBe('collection_not_found')
  })
})

describe('sortPassages', () => {
  it('orders by page, then by chunk ordinal (numerically)', () => {
    const hits = [{ chunk_id: 'd#10', page: 1 }, { chunk_id: 'd#9', page: 1 }, { chunk_id: 'd#0', page: 2 }]
    expect(sortPassages(hits).map((h) => h.chunk_id)).toEqual(['d#9', 'd#10', 'd#0'])
  })
})
