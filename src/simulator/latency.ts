/**
 * Latency profiles of the simulator (`SIM_PROFILE`): `instant` (the default, for tests) answers at
 * once; `realistic` takes about as long as chat.qwen.ai: `chats/new` ~150 ms, the first completion
 * frame ~300 ms after the request, then ~20 ms between frames. Each delay can be set on its own and
 * gets a uniform jitter of ±`jitterPct` percent.
 */

export type SimProfile = 'instant' | 'realistic'

export interface SimLatencyOptions {
  /** Default `instant`: every delay 0 unless given. */
  profile?: SimProfile
  /** `POST /api/v2/chats/new` answers after this long (realistic: 150). */
  chatNewDelayMs?: number
  /** A streamed completion's first frame goes out this long after its headers (realistic: 300). */
  firstFrameDelayMs?: number
  /** Between two frames of a streamed completion (realistic: 20). A scenario's `frameDelayMs` wins. */
  frameDelayMs?: number
  /** Uniform jitter of every delay, in percent of it (realistic: 10). */
  jitterPct?: number
}

export const REALISTIC: Required<Omit<SimLatencyOptions, 'profile'>> = { chatNewDelayMs: 150, firstFrameDelayMs: 300, frameDelayMs: 20, jitterPct: 10 }
const INSTANT: Required<Omit<SimLatencyOptions, 'profile'>> = { chatNewDelayMs: 0, firstFrameDelayMs: 0, frameDelayMs: 0, jitterPct: 0 }

/** The delays (ms) of one simulator, each drawn with its jitter. */
export interface SimLatency {
  chatNew: () => number
  firstFrame: () => number
  frame: () => number
  /** Whether frames are written one by one with a pause between them. */
  readonly paced: boolean
  /** The configured values, without jitter. */
  readonly config: Required<Omit<SimLatencyOptions, 'profile'>> & { profile: SimProfile }
}

export function simLatency (o: SimLatencyOptions = {}, random: () => number = Math.random): SimLatency {
  const profile = o.profile ?? 'instant'
  const base = profile === 'realistic' ? REALISTIC : INSTANT
  const pick = (k: keyof typeof base): number => {
    const v = o[k] ?? base[k]
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`simulator latency: ${k} must be a number >= 0, got ${v}`)
    return v
  }
  const config = { profile, chatNewDelayMs: pick('chatNewDelayMs'), firstFrameDelayMs: pick('firstFrameDelayMs'), frameDelayMs: pick('frameDelayMs'), jitterPct: Math.min(100, pick('jitterPct')) }
  const draw = (ms: number): number => ms <= 0 ? 0 : Math.max(0, Math.round(ms * (1 + (config.jitterPct / 100) * (2 * random() - 1))))
  return {
    chatNew: () => draw(config.chatNewDelayMs),
    firstFrame: () => draw(config.firstFrameDelayMs),
    frame: () => draw(config.frameDelayMs),
    paced: config.frameDelayMs > 0,
    config,
  }
}

const ENV_KEYS = {
  chatNewDelayMs: 'SIM_CHAT_NEW_DELAY_MS',
  firstFrameDelayMs: 'SIM_FIRST_FRAME_DELAY_MS',
  frameDelayMs: 'SIM_FRAME_DELAY_MS',
  jitterPct: 'SIM_JITTER_PCT',
} as const

/**
 * The latency options from environment variables (`SIM_PROFILE`, `SIM_CHAT_NEW_DELAY_MS`,
 * `SIM_FIRST_FRAME_DELAY_MS`, `SIM_FRAME_DELAY_MS`, `SIM_JITTER_PCT`); throws naming the bad one.
 */
export function latencyFromEnv (env: Record<string, string | undefined>): SimLatencyOptions {
  const out: SimLatencyOptions = {}
  const p = env.SIM_PROFILE
  if (p !== undefined && p !== '') {
    if (p !== 'instant' && p !== 'realistic') throw new Error(`invalid SIM_PROFILE: ${p} (instant or realistic)`)
    out.profile = p
  }
  for (const [k, name] of Object.entries(ENV_KEYS) as Array<[keyof typeof ENV_KEYS, string]>) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    const v = Number(raw)
    if (!Number.isFinite(v) || v < 0) throw new Error(`invalid ${name}: ${raw} (a number >= 0)`)
    out[k] = v
  }
  return out
}
