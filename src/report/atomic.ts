/** Writes that never leave a half-written file: see src/io/atomic.ts, the one writer every save uses. */
export { type AtomicFile, type AtomicOptions, tempName, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
