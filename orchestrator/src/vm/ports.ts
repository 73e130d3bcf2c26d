/**
 * Host TCP ports for QEMU's user-mode `hostfwd`. One job: pick a port that is free right now and
 * recognise QEMU's "port was taken after all" failure so the launcher can retry with another.
 *
 * The probe binds port 0 on 127.0.0.1 (the kernel picks a free ephemeral port), releases it and
 * hands the number to QEMU. Another process may grab it in between; QEMU then fails at start with
 * "Could not set up host forwarding rule", which isHostForwardFailure() recognises.
 */
import { createServer } from 'node:net';

/** Ports handed out by this process and not yet released: never hand out the same one twice. */
const reserved = new Set<number>();

/** Returns a currently free TCP port on 127.0.0.1 (and remembers it until releasePort). */
export async function pickFreePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ port: 0, host, exclusive: true }, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !reserved.has(port)) {
      reserved.add(port);
      return port;
    }
  }
  throw new Error('could not find a free TCP port on ' + host);
}

export function releasePort(port: number): void {
  reserved.delete(port);
}

/** True if QEMU's stderr says the hostfwd port could not be bound. */
export function isHostForwardFailure(stderr: string): boolean {
  return /Could not set up host forwarding rule|Address already in use/i.test(stderr);
}
