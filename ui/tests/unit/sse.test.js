import { describe, expect, it } from 'vitest'

import { sseData } from '../../src/lib/sse.js'
import { streamOf } from './helpers.js'

async function collect(pieces) {
  const out = []
  for await (const d of sseData(streamOf(pieces))) out.push(d)
  return out
}

describe('sseData', () => {
  it('yields each event once, however the bytes are split', async () => {
    const text = 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    const whole = await collect([text])
    const bytewise = await collect(text.split(''))
    expect(whole).toEqual(['{"a":1}', '{"b":2}', '[DONE]'])
    expect(bytewise).toEqual(whole)
  })

  it('handles CRLF, multi-line data, comments and a last event without a blank line', async () => {
    const out = await collect([': keep-alive\r\n\r\n', 'event: x\r\ndata: line1\r\ndata: line2\r\n\r\n', 'data:tail'])
    expect(out).toEqual(['line1\nline2', 'tail'])
  })

  it('decodes UTF-8 split inside a character', async () => {
    const bytes = new TextEncoder().encode('data: 根因\n\n')
    const stream = new ReadableStream({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]))
        c.close()
      },
    })
    const out = []
    for await (const d of sseData(stream)) out.push(d)
    expect(out).toEqual(['根因'])
  })
})
