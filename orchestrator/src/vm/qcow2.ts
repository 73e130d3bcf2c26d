/**
 * Creates an empty qcow2 image without qemu-img. One job: a scratch disk that can hold savevm
 * snapshots (QEMU stores VM state only in qcow2), so fast reset works even when the QEMU build
 * ships no qemu-img.
 *
 * Layout (qcow2 version 2, 64 KiB clusters): cluster 0 header, 1 L1 table, 2 refcount table,
 * 3 refcount block (16-bit refcounts; clusters 0–3 have refcount 1). All data clusters unallocated.
 */
import { writeFile } from 'node:fs/promises';

const CLUSTER_BITS = 16;
const CLUSTER = 1 << CLUSTER_BITS;

export function emptyQcow2(sizeBytes: number): Buffer {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % 512 !== 0) throw new RangeError(`qcow2 size ${sizeBytes}`);
  const l2Covers = (CLUSTER / 8) * CLUSTER; // bytes mapped by one L2 table
  const l1Size = Math.ceil(sizeBytes / l2Covers);
  if (l1Size * 8 > CLUSTER) throw new RangeError('qcow2 size too large for a one-cluster L1 table');
  const buf = Buffer.alloc(4 * CLUSTER);
  buf.writeUInt32BE(0x514649fb, 0); // "QFI\xfb"
  buf.writeUInt32BE(2, 4); // version
  buf.writeBigUInt64BE(0n, 8); // backing file offset
  buf.writeUInt32BE(0, 16); // backing file size
  buf.writeUInt32BE(CLUSTER_BITS, 20);
  buf.writeBigUInt64BE(BigInt(sizeBytes), 24);
  buf.writeUInt32BE(0, 32); // no encryption
  buf.writeUInt32BE(l1Size, 36);
  buf.writeBigUInt64BE(BigInt(1 * CLUSTER), 40); // L1 table
  buf.writeBigUInt64BE(BigInt(2 * CLUSTER), 48); // refcount table
  buf.writeUInt32BE(1, 56); // refcount table clusters
  buf.writeUInt32BE(0, 60); // snapshots
  buf.writeBigUInt64BE(0n, 64);
  buf.writeBigUInt64BE(BigInt(3 * CLUSTER), 2 * CLUSTER); // refcount table[0] -> refcount block
  for (let c = 0; c < 4; c++) buf.writeUInt16BE(1, 3 * CLUSTER + 2 * c);
  return buf;
}

export async function createEmptyQcow2(path: string, sizeBytes = 64 * 1024 * 1024): Promise<void> {
  await writeFile(path, emptyQcow2(sizeBytes));
}
