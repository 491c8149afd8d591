// FastCDC-2020 in TypeScript: the twin of native/src/fastcdc.c, bit for bit the `v2020` module of
// fastcdc-rs (nlfiedler/fastcdc-rs, MIT). Used when the native addon is unavailable and to
// cross-check it.
//
// Speed: no BigInt in the scan. The scan loop keeps only bits 0..55 of the 64-bit gear hash, as a
// 24-bit low part and a 32-bit high part (bits 24..55) in int32 arithmetic, where the carry is
// simply `low >>> 24` (a full 32/32 split needs an unsigned compare per add, which V8 runs about
// 3x slower). The masks only test bits below 49, and carries only move upwards, so the dropped
// bits 56..63 never influence a cut. The exact 64-bit hash at the cut is recomputed afterwards
// from the last 64 bytes scanned: every step shifts the hash left by 2 bits per byte pair, so
// older bytes have left the 64-bit window.

import { logarithm2, validateChunkerParams, type ChunkerParams } from './params.js';

/*
 * MASKS and GEAR are copied from fastcdc-rs src/v2020/mod.rs (Copyright (c) Nathan Fiedler, MIT).
 * MASKS[n] has n bits set (entries 0..4 are padding; values from the destor C reference and
 * restic-FastCDC). GEAR[i] is the high 8 bytes of MD5(i). fastcdc-rs's GEAR_LS is GEAR << 1.
 */
const MASKS: readonly bigint[] = [
  0n, 0n, 0n, 0n, 0n,
  0x0000000001804110n, // unused except for NC 3
  0x0000000001803110n, // 64B
  0x0000000018035100n, // 128B
  0x0000001800035300n, // 256B
  0x0000019000353000n, // 512B
  0x0000590003530000n, // 1KB
  0x0000d90003530000n, // 2KB
  0x0000d90103530000n, // 4KB
  0x0000d90303530000n, // 8KB
  0x0000d90313530000n, // 16KB
  0x0000d90f03530000n, // 32KB
  0x0000d90303537000n, // 64KB
  0x0000d90703537000n, // 128KB
  0x0000d90707537000n, // 256KB
  0x0000d91707537000n, // 512KB
  0x0000d91747537000n, // 1MB
  0x0000d91767537000n, // 2MB
  0x0000d93767537000n, // 4MB
  0x0000d93777537000n, // 8MB
  0x0000d93777577000n, // 16MB
  0x0000db3777577000n, // unused except for NC 3
];

// prettier-ignore
const GEAR_HEX: readonly string[] = [
  '3b5d3c7d207e37dc', '784d68ba91123086', 'cd52880f882e7298', 'eacf8e4e19fdcca7',
  'c31f385dfbd1632b', '1d5f27001e25abe6', '83130bde3c9ad991', 'c4b225676e9b7649',
  'aa329b29e08eb499', 'b67fcbd21e577d58', '0027baaada2acf6b', 'e3ef2d5ac73c2226',
  '0890f24d6ed312b7', 'a809e036851d7c7e', 'f0a6fe5e0013d81b', '1d026304452cec14',
  '03864632648e248f', 'cdaacf3dcd92b9b4', 'f5e012e63c187856', '8862f9d3821c00b6',
  'a82f7338750f6f8a', '1e583dc6c1cb0b6f', '7a3145b69743a7f1', 'abb20fee404807eb',
  'b14b3cfe07b83a5d', 'b9dc27898adb9a0f', '3703f5e91baa62be', 'cf0bb866815f7d98',
  '3d9867c41ea9dcd3', '1be1fa65442bf22c', '14300da4c55631d9', 'e698e9cbc6545c99',
  '4763107ec64e92a5', 'c65821fc65696a24', '76196c064822f0b7', '485be841f3525e01',
  'f652bc9c85974ff5', 'cad8352face9e3e9', '2a6ed1dceb35e98e', 'c6f483badc11680f',
  '3cfd8c17e9cf12f1', '89b83c5e2ea56471', 'ae665cfd24e392a9', 'ec33c4e504cb8915',
  '3fb9b15fc9fe7451', 'd7fd1fd1945f2195', '31ade0853443efd8', '255efc9863e1e2d2',
  '10eab6008d5642cf', '46f04863257ac804', 'a52dc42a789a27d3', 'daaadf9ce77af565',
  '6b479cd53d87febb', '6309e2d3f93db72f', 'c5738ffbaa1ff9d6', '6bd57f3f25af7968',
  '67605486d90d0a4a', 'e14d0b9663bfbdae', 'b7bbd8d816eb0414', 'def8a4f16b35a116',
  'e7932d85aaaffed6', '08161cbae90cfd48', '855507beb294f08b', '91234ea6ffd399b2',
  'ad70cf4b2435f302', 'd289a97565bc2d27', '8e558437ffca99de', '96d2704b7115c040',
  '0889bbcdfc660e41', '5e0d4e67dc92128d', '72a9f8917063ed97', '438b69d409e016e3',
  'df4fed8a5d8a4397', '00f41dcf41d403f7', '4814eb038e52603f', '9dafbacc58e2d651',
  'fe2f458e4be170af', '4457ec414df6a940', '06e62f1451123314', 'bd1014d173ba92cc',
  'def318e25ed57760', '9fea0de9dfca8525', '459de1e76c20624b', 'aeec189617e2d666',
  '126a2c06ab5a83cb', 'b1321532360f6132', '65421503dbb40123', '2d67c287ea089ab3',
  '6c93bff5a56bd6b6', '4ffb2036cab6d98d', 'ce7b785b1be7ad4f', 'edb42ef6189fd163',
  'dc905288703988f6', '365f9c1d2c691884', 'c640583680d99bfe', '3cd4624c07593ec6',
  '7f1ea8d85d7c5805', '014842d480b57149', '0b649bcb5a828688', 'bcd5708ed79b18f0',
  'e987c862fbd2f2f0', '982731671f0cd82c', 'baf13e8b16d8c063', '8ea3109cbd951bba',
  'd141045bfb385cad', '2acbc1a0af1f7d30', 'e6444d89df03bfdf', 'a18cc771b8188ff9',
  '9834429db01c39bb', '214add07fe086a1f', '8f07c19b1f6b3ff9', '56a297b1bf4ffe55',
  '94d558e493c54fc7', '40bfc24c764552cb', '931a706f8a8520cb', '32229d322935bd52',
  '2560d0f5dc4fefaf', '9dbcc48355969bb6', '0fd81c3985c0b56a', 'e03817e1560f2bda',
  'c1bb4f81d892b2d5', 'b0c4864f4e28d2d7', '3ecc49f9d9d6c263', '51307e99b52ba65e',
  '8af2b688da84a752', 'f5d72523b91b20b6', '6d95ff1ff4634806', '562f21555458339a',
  'c0ce47f889336346', '487823e5089b40d8', 'e4727c7ebc6d9592', '5a8f7277e94970ba',
  'fca2f406b1c8bb50', '5b1f8a95f1791070', 'd304af9fc9028605', '5440ab7fc930e748',
  '312d25fbca2ab5a1', '10f4a4b234a4d575', '90301d55047e7473', '3b6372886c61591e',
  '293402b77c444e06', '451f34a4d3e97dd7', '3158d814d81bc57b', '034942425b9bda69',
  'e2032ff9e532d9bb', '62ae066b8b2179e5', '9545e10c2f8d71d8', '7ff7483eb2d23fc0',
  '00945fcebdc98d86', '8764bbbe99b26ca2', '1b1ec62284c0bfc3', '58e0fcc4f0aa362b',
  '5f4abefa878d458d', 'fd74ac2f9607c519', 'a4e3fb37df8cbfa9', 'bf697e43cac574e5',
  '86f14a3f68f4cd53', '24a23d076f1ce522', 'e725cd8048868cc8', 'bf3c729eb2464362',
  'd8f6cd57b3cc1ed8', '6329e52425541577', '62aa688ad5ae1ac0', '0a242566269bf845',
  '168b1a4753aca74b', 'f789afefff2e7e3c', '6c3362093b6fccdb', '4ce8f50bd28c09b2',
  '006a2db95ae8aa93', '975b0d623c3d1a8c', '18605d3935338c5b', '5bb6f6136cad3c71',
  '0f53a20701f8d8a6', 'ab8c5ad2e7e93c67', '40b5ac5127acaa29', '8c7bf63c2075895f',
  '78bd9f7e014a805c', 'b2c9e9f4f9c8c032', 'efd6049827eb91f3', '2be459f482c16fbd',
  'd92ce0c5745aaa8c', '0aaa8fb298d965b9', '2b37f92c6c803b15', '8c54a5e94e0f0e78',
  '95f9b6e90c0a3032', 'e7939faa436c7874', 'd16bfe8f6a8a40c9', '44982b86263fd2fa',
  'e285fb39f984e583', '779a8df72d7619d3', 'f2d79a8de8d5dd1e', 'd1037354d66684e2',
  '004c82a4e668a8e5', '31d40a7668b044e6', 'd70578538bd02c11', 'db45431078c5f482',
  '977121bb7f6a51ad', '73d5ccbd34eff8dd', 'e437a07d356e17cd', '47b2782043c95627',
  '9fb251413e41d49a', 'ccd70b60652513d3', '1c95b31e8a1b49b2', 'cae73dfd1bcb4c1b',
  '34d98331b1f5b70f', '784e39f22338d92f', '18613d4a064df420', 'f1d8dae25f0bcebe',
  '33f77c15ae855efc', '3c88b3b912eb109c', '956a2ec96bafeea5', '1aa005b5e0ad0e87',
  '5500d70527c4bb8e', 'e36c57196421cc44', '13c4d286cc36ee39', '5654a23d818b2a81',
  '77b1dc13d161abdc', '734f44de5f8d5eb5', '60717e174a6c89a2', 'd47d9649266a211e',
  '5b13a4322bb69e90', 'f7669609f8b5fc3c', '21e6ac55bedcdac9', '9b56b62b61166dea',
  'f48f66b939797e9c', '35f332f9c0e6ae9a', 'cc733f6a9a878db0', '3da161e41cc108c2',
  'b7d74ae535914d51', '4d493b0b11d36469', 'ce264d1dfba9741a', 'a9d1f2dc7436dc06',
  '70738016604c2a27', '231d36e96e93f3d5', '7666881197838d19', '4a2a83090aaad40c',
  'f1e761591668b35d', '7363236497f730a7', '301080e37379dd4d', '502dea2971827042',
  'c2c5eb858f32625f', '786afb9edfafbdff', 'daee0d868490b2a4', '617366b3268609f6',
  'ae0e35a0fe46173e', 'd1a07de93e824f11', '079b8b115ea4cca8', '93a99274558faebb',
  'fb1e6e22e08a03b3', 'ea635fdba3698dd0', 'cf53659328503a5c', 'cde3b31e6fd5d780',
  '8e3e4221d3614413', 'ef14d0d86bf1a22c', 'e1d830d3f16c5ddb', 'aabd2b2a451504e1',
];

const U64 = (1n << 64n) - 1n;
const M24 = 0xffffff;
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffffffffn) | 0;
const lo32 = (v: bigint): number => Number(v & 0xffffffffn) | 0;
/** Bits 24..55 of v as an int32. */
const mid32 = (v: bigint): number => Number((v >> 24n) & 0xffffffffn) | 0;
const lo24 = (v: bigint): number => Number(v & 0xffffffn);

/** The published GEAR table, parsed once. */
const GEAR: readonly bigint[] = GEAR_HEX.map((h) => BigInt('0x' + h));

export interface JsCut {
  length: number;
  hash: bigint;
}

/** Mask halves for the scan loop: [ls mid, ls low, mid, low] (see the header comment). */
type Masks = readonly [number, number, number, number];

/** A FastCDC-2020 cutter with fixed parameters (the tables are built once). */
export class JsFastCdc {
  readonly params: ChunkerParams;
  // Seeded gear tables for the scan loop: bits 0..23 and 24..55.
  private readonly gLo24 = new Int32Array(256);
  private readonly gMid = new Int32Array(256);
  private readonly gLsLo24 = new Int32Array(256);
  private readonly gLsMid = new Int32Array(256);
  // The same tables as exact 32-bit halves, for recomputing the full hash at a cut.
  private readonly gHi = new Int32Array(256);
  private readonly gLo = new Int32Array(256);
  private readonly gLsHi = new Int32Array(256);
  private readonly gLsLo = new Int32Array(256);
  private readonly masksS: Masks;
  private readonly masksL: Masks;
  /** The hash at the last cut (cutLength), as 32-bit halves. */
  hashHi = 0;
  hashLo = 0;

  constructor(params: ChunkerParams) {
    validateChunkerParams(params);
    this.params = { ...params };
    const bits = logarithm2(params.avg);
    const maskS = MASKS[bits + params.normalization]!;
    const maskL = MASKS[bits - params.normalization]!;
    // The loop tests bits 0..55 only; every mask (and mask << 1) lies below bit 49.
    const split = (m: bigint): Masks => {
      const ls = (m << 1n) & U64;
      if (ls >> 56n !== 0n) throw new Error('FastCDC mask outside bits 0..55');
      return [mid32(ls), lo24(ls), mid32(m), lo24(m)];
    };
    this.masksS = split(maskS);
    this.masksL = split(maskL);
    // with_level_and_seed: gear[i] ^ seed, gear_ls[i] ^ (seed << 1), u64 wrapping.
    const seed = params.seed & U64;
    const seedLs = (seed << 1n) & U64;
    for (let i = 0; i < 256; i++) {
      const g = GEAR[i]! ^ seed;
      const gls = ((GEAR[i]! << 1n) & U64) ^ seedLs;
      this.gLo24[i] = lo24(g);
      this.gMid[i] = mid32(g);
      this.gLsLo24[i] = lo24(gls);
      this.gLsMid[i] = mid32(gls);
      this.gHi[i] = hi32(g);
      this.gLo[i] = lo32(g);
      this.gLsHi[i] = hi32(gls);
      this.gLsLo[i] = lo32(gls);
    }
  }

  /** The next chunk of buf[offset, offset + length). */
  cut(buf: Uint8Array, offset: number, length: number): JsCut {
    const n = this.cutLength(buf, offset, length);
    return { length: n, hash: (BigInt(this.hashHi >>> 0) << 32n) | BigInt(this.hashLo >>> 0) };
  }

  /**
   * fastcdc-rs `cut_gear`: the length of the next chunk of buf[offset, offset + length); the gear
   * hash at the cut is left in hashHi/hashLo (0 when length <= min: no byte is hashed then).
   */
  cutLength(buf: Uint8Array, offset: number, length: number): number {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 ||
        offset + length > buf.length) {
      throw new RangeError(`cut: offset ${offset} + length ${length} outside a buffer of ${buf.length} bytes`);
    }
    const { min, avg, max } = this.params;
    let remaining = length;
    if (remaining <= min) {
      this.hashHi = 0;
      this.hashLo = 0;
      return remaining;
    }
    let center = avg;
    if (remaining > max) remaining = max;
    else if (remaining < center) center = remaining;

    // Byte pairs at (a, a + 1), a = 2 * index from 2 * floor(min / 2), as in fastcdc-rs; small
    // masks up to 2 * floor(center / 2), then large masks up to 2 * floor(remaining / 2).
    const scanStart = offset + ((min >>> 1) << 1);
    const end1 = offset + ((center >>> 1) << 1);
    const end2 = offset + ((remaining >>> 1) << 1);
    let p = this.scan(buf, scanStart, end1, this.masksS);
    if (p < 0) p = this.scan(buf, end1, end2, this.masksL, true);
    if (p < 0) {
      // No cut point (e.g. all zeroes): the largest chunk allowed.
      this.fullHash(buf, scanStart, end2);
      return remaining;
    }
    this.fullHash(buf, scanStart, p + 1);
    return p - offset;
  }

  // Scan state carried from the first scan() into the second.
  private mid = 0;
  private low = 0;

  /**
   * Scans byte pairs in buf[from, to). Returns the absolute position p of the cut (chunk length
   * p - offset: a cut after the first byte of a pair is at its index, as in fastcdc-rs), or -1.
   */
  private scan(buf: Uint8Array, from: number, to: number, masks: Masks, resume = false): number {
    const gLo24 = this.gLo24, gMid = this.gMid, gLsLo24 = this.gLsLo24, gLsMid = this.gLsMid;
    const mLsMid = masks[0], mLsLo = masks[1], mMid = masks[2], mLo = masks[3];
    let mid = resume ? this.mid : 0;
    let low = resume ? this.low : 0;
    for (let p = from; p < to; p += 2) {
      // hash = (hash << 2) + gear_ls[src[a]]
      let x = buf[p]!;
      let l = (low << 2) + gLsLo24[x]!;
      mid = ((mid << 2) + gLsMid[x]! + (l >>> 24)) | 0; // l holds low << 2: its bits 24.. carry
      low = l & M24;
      if (((mid & mLsMid) | (low & mLsLo)) === 0) return p;
      // hash += gear[src[a + 1]]
      x = buf[p + 1]!;
      l = low + gLo24[x]!;
      mid = (mid + gMid[x]! + (l >>> 24)) | 0;
      low = l & M24;
      if (((mid & mMid) | (low & mLo)) === 0) return p + 1;
    }
    this.mid = mid;
    this.low = low;
    return -1;
  }

  /**
   * Sets hashHi/hashLo to the exact 64-bit gear hash after hashing buf[scanStart, end) in pairs
   * (end - scanStart may be odd: then the last byte went through gear_ls only). Only the last
   * 64 bytes matter: each pair shifts the hash left by 2 bits.
   */
  private fullHash(buf: Uint8Array, scanStart: number, end: number): void {
    const gHi = this.gHi, gLo = this.gLo, gLsHi = this.gLsHi, gLsLo = this.gLsLo;
    let p = Math.max(scanStart, end - 64);
    if ((p - scanStart) & 1) p--; // stay on the pair grid
    let hi = 0, lo = 0;
    // 64-bit add of (ah, al) into (hi, lo), with the carry from an unsigned compare.
    for (; p < end; p++) {
      const x = buf[p]!;
      let ah: number, al: number;
      if (((p - scanStart) & 1) === 0) {
        hi = (hi << 2) | (lo >>> 30);
        lo <<= 2;
        ah = gLsHi[x]!;
        al = gLsLo[x]!;
      } else {
        ah = gHi[x]!;
        al = gLo[x]!;
      }
      const before = lo;
      lo = (lo + al) | 0;
      hi = (hi + ah + ((lo >>> 0) < (before >>> 0) ? 1 : 0)) | 0;
    }
    this.hashHi = hi;
    this.hashLo = lo;
  }
}
