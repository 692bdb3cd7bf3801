// Server-sent events over fetch (EventSource cannot POST or send an Authorization header).

/**
 * Yield the `data` payload of each event in a byte stream, as a string
 * (multi-line data joined with '\n'; comments and other fields ignored).
 */
export async function* sseData(stream) {
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true })
      buffer = buffer.replace(/\r\n?/g, '\n')
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = eventData(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        if (data !== null) yield data
      }
      if (done) {
        const data = eventData(buffer)
        if (data !== null) yield data
        return
      }
    }
  } finally {
    reader.releaseLock()
  }
}

function eventData(block) {
  const lines = []
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) lines.push(line.slice(line.startsWith('data: ') ? 6 : 5))
  }
  return lines.length ? lines.join('\n') : null
}
