/** Wait for `work`, but at most `ms`: resolves `true` when it settled in time, `false` otherwise. */
export async function withinGrace (work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([work.then(() => true, () => true), grace])
  } finally {
    clearTimeout(timer)
  }
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (`p` itself runs on). */
export function untilAborted<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v) }, (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) })
  })
}
