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
