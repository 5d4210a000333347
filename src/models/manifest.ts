/**
 * Model manifest (`models/NAME/manifest.json`): the TypeBox schema and its validator.
 *
 * The manifest is written by the trainer's `TASK export` commands (trainer/TASK/export.py) and read by the
 * service at start. Tensors are described by `inputs`/`outputs`: layout (NCHW, or NC for vectors), dtype (float32),
 * channels, value range, the size multiple that H and W must have, and which dims are dynamic.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const TensorSpec = Type.Object({
  name: Type.String(),
  layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NC')]),
  dtype: Type.Literal('float32'),
  channels: Type.Integer({ minimum: 1 }),
  range: Type.Tuple([Type.Number(), Type.Number()]),
  size_multiple: Type.Integer({ minimum: 1 }),
  dynamic_dims: Type.Array(Type.String()),
  description: Type.Optional(Type.String()),
});
export type TensorSpec = Static<typeof TensorSpec>;

export const Manifest = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$' }),
  version: Type.String(),
  task: Type.Union([Type.Literal('translate'), Type.Literal('inpaint'), Type.Literal('generate'), Type.Literal('upscale')]),
  description: Type.Optional(Type.String()),
  onnx: Type.Object({ file: Type.String(), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }), opset: Type.Integer() }),
  inputs: Type.Array(TensorSpec, { minItems: 1 }),
  outputs: Type.Array(TensorSpec, { minItems: 1 }),
  serving: Type.Object({
    default: Type.Boolean(),
    /** inpaint and translate: the longest side the model runs at; larger images run reduced (routes/inpaint.ts, routes/translate.ts). */
    working_max_side: Type.Optional(Type.Integer({ minimum: 16 })),
    /** Peak RSS growth of one forward pass, MiB per megapixel of input (measured by `npm run bench:model-memory`); the memory budget's estimate. */
    peak_mb_per_mp: Type.Optional(Type.Number({ minimum: 0 })),
    /** upscale: the model's output is this many times the input's width and height. */
    scale: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
    /** upscale: the largest input side (px) one pass takes; larger inputs run in overlapping tiles of this side (routes/upscale.ts). */
    tile: Type.Optional(Type.Integer({ minimum: 16 })),
    /** upscale: input px each tile extends past the part of the output it gives (>= the network's reach, so tiles join seamlessly). */
    tile_overlap: Type.Optional(Type.Integer({ minimum: 0 })),
    /** inpaint: informational; true when the graph itself averages with the mirrored input's result (export --flip-tta). */
    flip_tta: Type.Optional(Type.Boolean()),
    /**
     * at most this many onnxruntime intra-op threads for this model (capped by INTRA_OP_THREADS). 1 makes a
     * pass independent of its batch size to the bit: with several threads onnxruntime splits element-wise
     * kernels (Tanh) at batch-dependent points, and a sample can differ by ~1e-5 between batch sizes.
     */
    intra_op_threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    /** dynamic batching (inference/batcher.ts); each field optional, defaults in DEFAULT_BATCHING. */
    batching: Type.Optional(Type.Object({
      max_batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
      /** at most this many pixels (items × H × W) in one pass; a larger single request runs alone. */
      max_batch_pixels: Type.Optional(Type.Integer({ minimum: 1 })),
      max_queue_delay_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
      max_queue: Type.Optional(Type.Integer({ minimum: 1 })),
      timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    })),
  }, { additionalProperties: true }),
  /** generate: class names, index = position in the `y` class-weight vector. */
  classes: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  /** generate: length of the `z` noise vector. */
  z_dim: Type.Optional(Type.Integer({ minimum: 1 })),
  /**
   * issue 34: `explain.onnx` = this model's graph with its internal maps as extra outputs (written by
   * `python3 -m trainer explain export`): PONO mu / sigma per PONO layer, the AN soft layout per AN layer.
   */
  explain: Type.Optional(Type.Object({
    file: Type.String(),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    model_sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    maps: Type.Array(Type.Object({
      output: Type.String(),
      kind: Type.Union([Type.Literal('pono_mu'), Type.Literal('pono_sigma'), Type.Literal('pono_dms_beta'), Type.Literal('pono_dms_gamma'), Type.Literal('an_layout')]),
      layer: Type.String(),
      entities: Type.Optional(Type.Integer()),
      sampling: Type.Optional(Type.Object({ mode: Type.String(), pool: Type.Optional(Type.Integer()), n: Type.Optional(Type.Integer()) })),
      definition: Type.Optional(Type.String()),
    }, { additionalProperties: true }), { minItems: 1 }),
    parity_outputs: Type.Optional(Type.Array(Type.String())),
  }, { additionalProperties: true })),
  /**
   * Other precisions of the same model (written by `npm run int8 -- NAME`): `int8` = static INT8 in QDQ form
   * (trainer/int8.py), its own file and sha256, how it was calibrated, its measured quality against the fp32 graph,
   * and `within_bounds` (the quality loss within the project's bounds: PSNR 0.15 dB, colour hue 0.01, inpaint
   * detail 0.02). Served when `PRECISION` asks for it (src/models/repository.ts `choosePrecision`).
   */
  variants: Type.Optional(Type.Object({
    int8: Type.Optional(Type.Object({
      file: Type.String(),
      sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
      within_bounds: Type.Boolean(),
      calibration: Type.Record(Type.String(), Type.Unknown()),
      quality: Type.Record(Type.String(), Type.Unknown()),
    }, { additionalProperties: true })),
  }, { additionalProperties: true })),
  training: Type.Record(Type.String(), Type.Unknown()),
  metrics: Type.Record(Type.String(), Type.Unknown()),
  license: Type.String(),
}, { additionalProperties: true });
export type Manifest = Static<typeof Manifest>;

/**
 * Validate parsed JSON as a {@link Manifest}.
 * @throws Error listing the first schema violations (path and message) when `data` is not a manifest,
 *   or when `onnx.file` (or `explain.file`, `variants.int8.file`) is not a plain file name inside the model folder.
 */
export function parseManifest(data: unknown, source: string): Manifest {
  if (!Value.Check(Manifest, data)) {
    const errs = [...Value.Errors(Manifest, data)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new Error(`${source}: not a valid manifest: ${errs.join('; ')}`);
  }
  if (data.onnx.file.includes('/') || data.onnx.file.includes('\\') || data.onnx.file.startsWith('.')) {
    throw new Error(`${source}: onnx.file must be a file name inside the model folder`);
  }
  for (const [what, f] of [['explain.file', data.explain?.file], ['variants.int8.file', data.variants?.int8?.file]] as const) {
    if (f !== undefined && (f.includes('/') || f.includes('\\') || f.startsWith('.'))) {
      throw new Error(`${source}: ${what} must be a file name inside the model folder`);
    }
  }
  return data;
}
