/** The live probe's core: run the sequence, format the report (no `process` here). */
export { runProbe, sample, type ProbeCheck, type ProbeOptions, type ProbeReport } from './run.js'
export { formatReport } from './report.js'
