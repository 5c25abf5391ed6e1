import { checkedAlloc, currentAllocOp } from '../../core/limits.js';

/**
 * Checks a block of kernel-memory scratch (im2col columns, packed panels, padded planes)
 * against the tensor budget before it is asked for; returns `bytes`. Huge pads or dilations
 * can make scratch far larger than the op's output, so the output check alone is not enough.
 */
export function scratchBytes(bytes: number): number {
  return checkedAlloc(bytes, 1, `${currentAllocOp() ?? 'kernel'}: WebAssembly scratch`);
}
