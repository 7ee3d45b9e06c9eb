import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes of an AES-256 key. */
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1:';

/** Name of the key file made in the data folder when SLUICE_SECRET_KEY is not set. */
export const SECRET_KEY_FILE = 'secret.key';

/**
 * Encrypts and decrypts secret option values with AES-256-GCM. A sealed text is `v1:` and the base64 of
 * IV (12 bytes), tag (16 bytes) and ciphertext; a tampered or foreign one fails to open.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a secret key is ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return VERSION + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The plain text; throws when the text was sealed under another key or changed. */
  open(sealed: string): string {
    if (!sealed.startsWith(VERSION)) throw new Error('not a sealed secret of this version');
    const raw = Buffer.from(sealed.slice(VERSION.length), 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('a sealed secret too short to open');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}

/**
 * A 32-byte key written as 64 hex digits or as base64 (padded or not, standard or URL alphabet); undefined
 * when the text is neither. The caller names the setting; the text is never echoed.
 */
export function parseSecretKey(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === KEY_BYTES) return key;
  }
  return undefined;
}

/**
 * The key in `<dataDir>/secret.key`, made (random, mode 0600) on first start. Only for a store no other
 * replica shares: replicas must be given one SLUICE_SECRET_KEY.
 */
export function dataDirSecretKey(dataDir: string): Buffer {
  const file = join(dataDir, SECRET_KEY_FILE);
  try {
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  chmodSync(file, 0o600);
  const key = parseSecretKey(readFileSync(file, 'utf8'));
  if (!key)
    throw new Error(
      `${file}: expected 64 hex digits (the key Sluice made on first start), got something else; restore it or set SLUICE_SECRET_KEY`,
    );
  return key;
}
