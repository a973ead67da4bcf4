// The two things of Node the client uses, declared for `tsc --noEmit --strict` on a machine
// without @types/node (a pipeline that has @types/node does not need this file).
declare module "node:crypto" {
  interface Hmac {
    update(data: string): Hmac;
    digest(encoding: "base64url"): string;
  }
  export function createHmac(algorithm: "sha256", key: string): Hmac;
}
