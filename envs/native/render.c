/* The CPU renderer's per-pixel pass as one loop: what envs/render.py's torch path computes
 * with a hundred-odd tensor operations per frame, here one call (loaded by envs/native).
 *
 * It gives the torch path's frames bit for bit (for draw orders in 0 .. 2**30 - 1, as
 * SpriteBatch requires): every value is computed with the same float32 operations in the same
 * order, built with -ffp-contract=off (no fused multiply-add). The torch path's docstring
 * explains the method: a pixel is drawn when its centre maps into the sprite's box, it takes
 * texel ceil(p) - 1 of the full-resolution sprite, and of all texels drawn on a pixel the one
 * with the largest key (order + 1) << 32 | alpha << 24 | rgb wins.
 *
 * Here each environment is drawn into a 64x64 key buffer that stays in cache; the pixels it
 * drew are then written into the frame and cleared for the next environment. The texels are
 * read from a 32-bit copy of the atlas, alpha << 24 | rgb with 0 for transparent: the step's
 * other work evicts the atlas from the cache, and reading it back is much of this loop's time.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define FRAME 64

enum { KIND_CONST = 0, KIND_F32 = 1, KIND_I64 = 2, KIND_U8 = 3 };

/* One [num_envs, slots] field of a sprite batch: a strided tensor (strides in elements) or a constant. */
typedef struct {
    const void *data;
    int64_t env_stride, slot_stride;
    int64_t kind;
    float constant;
    float pad_;
} field_t;

enum { F_X, F_Y, F_RX, F_RY, F_A, F_B, F_TEX, F_ORDER, F_VISIBLE, F_TILES_U, F_TILES_V, F_TURNS, NUM_FIELDS };

typedef struct {
    field_t field[NUM_FIELDS];
    int64_t slots;
    int64_t span;          /* pixels drawn per side: the patch rounded up to whole tiles of the frame's smallest patch */
    int64_t half;          /* patch // 2: the first pixel is floor(centre) - half */
    int64_t transposed;    /* the batch's quarter turns are odd: transposed atlas, extents and tiles swapped */
    int64_t per_slot_turns;/* F_TURNS holds each slot's quarter turns */
    const float *extent;   /* by texture ([2, extent_stride]: half-widths, then half-heights), or NULL: F_RX/F_RY */
    int64_t extent_stride;
} batch_t;

/* A float32 field as float32 (int64 fields converted as torch's .to(float32) does). */
static inline float read_f32(const field_t *f, int64_t env, int64_t slot) {
    int64_t at = env * f->env_stride + slot * f->slot_stride;
    switch (f->kind) {
    case KIND_F32: return ((const float *)f->data)[at];
    case KIND_I64: return (float)((const int64_t *)f->data)[at];
    case KIND_U8: return (float)((const uint8_t *)f->data)[at];
    default: return f->constant;
    }
}

/* An integer field as int64: floats truncated as torch's .long() does (after the float32 cast). */
static inline int64_t read_i64(const field_t *f, int64_t env, int64_t slot) {
    int64_t at = env * f->env_stride + slot * f->slot_stride;
    switch (f->kind) {
    case KIND_I64: return ((const int64_t *)f->data)[at];
    case KIND_U8: return ((const uint8_t *)f->data)[at];
    default: return (int64_t)read_f32(f, env, slot);
    }
}

static const float TURN_COS[4] = {1.0f, 0.0f, -1.0f, 0.0f}, TURN_SIN[4] = {0.0f, 1.0f, 0.0f, -1.0f};
static const float TURN_SIGN_U[4] = {1.0f, -1.0f, -1.0f, 1.0f}, TURN_SIGN_V[4] = {1.0f, 1.0f, -1.0f, -1.0f};

/* The sprite coordinate along one axis after the optional tiling: -1 outside the box. */
static inline float tile(float uv, float reps, int tiled) {
    if (!tiled) return uv;
    if (uv < 0.0f || uv >= 1.0f) return -1.0f;
    float r = uv * reps;
    return r - truncf(r);
}

/* The texel coordinate: ceil(uv * size) - 1, clamped to [-1, size] (the transparent border). */
static inline float texel_coord(float uv, float size) {
    float c = ceilf(uv * size) - 1.0f;
    if (c < -1.0f) c = -1.0f;
    return c < size ? c : size;
}

/* Draws every batch into frames [num_envs, 64, 64, 3] (uint8, contiguous, zeroed by the caller:
 * only drawn pixels are written). camera_x, camera_y: the camera centre per environment
 * (stride 0: one for all). texture_info: [4, 2T] width, height, row stride and flat index of
 * texel (0, 0) per texture, the T transposed copies after the T textures. Returns 0; for the
 * first visible slot whose texture is not in 0..T-1, -(1 + its batch's index); for one whose
 * quarter turns are not in 0..3, 1 + its batch's index. */
int64_t render_frames(uint8_t *frames, int64_t num_envs, const float *camera_x, int64_t camera_x_stride,
                      const float *camera_y, int64_t camera_y_stride, float scale, float extent_scale,
                      int64_t general, int64_t tiled, const uint32_t *texel, const float *texture_info, int64_t num_textures,
                      const batch_t *batches, int64_t num_batches) {
    int64_t canvas[FRAME * FRAME];      /* the keys of one environment's frame; 0 where nothing is drawn */
    int16_t touched[FRAME * FRAME];     /* the pixels drawn so far, to be written out and cleared */
    int64_t num_touched = 0;
    const int64_t info_row = 2 * num_textures;
    const float neg_scale = -scale;
    memset(canvas, 0, sizeof canvas);
    for (int64_t env = 0; env < num_envs; env++) {
        const float cam_x = camera_x[env * camera_x_stride], cam_y = camera_y[env * camera_y_stride];
        for (int64_t bi = 0; bi < num_batches; bi++) {
            const batch_t *sb = &batches[bi];
            const field_t *f = sb->field;
            for (int64_t slot = 0; slot < sb->slots; slot++) {
                if (read_f32(&f[F_VISIBLE], env, slot) == 0.0f) continue;  /* nonzero: drawn */
                int64_t tex = read_i64(&f[F_TEX], env, slot);
                if (tex < 0 || tex >= num_textures) return -(1 + bi);
                float ex, ey;
                if (sb->extent) {
                    ex = sb->extent[tex];
                    ey = sb->extent[sb->extent_stride + tex];
                } else {
                    ex = read_f32(&f[F_RX], env, slot);
                    ey = read_f32(&f[F_RY], env, slot);
                }
                float reps_u = read_f32(&f[F_TILES_U], env, slot), reps_v = read_f32(&f[F_TILES_V], env, slot);
                float a, b;
                int odd = (int)sb->transposed;
                if (sb->per_slot_turns) {
                    int64_t turns = read_i64(&f[F_TURNS], env, slot);
                    if (turns < 0 || turns > 3) return 1 + bi;
                    a = general ? TURN_COS[turns] : TURN_SIGN_U[turns];
                    b = general ? TURN_SIN[turns] : TURN_SIGN_V[turns];
                    odd = !general && (turns & 1);
                } else {
                    a = read_f32(&f[F_A], env, slot);
                    b = read_f32(&f[F_B], env, slot);
                }
                if (odd) {
                    float s = ex; ex = ey; ey = s;
                    s = reps_u; reps_u = reps_v; reps_v = s;
                    tex += num_textures;
                }
                const float side_u = ex * extent_scale, side_v = ey * extent_scale;
                const int64_t order_bits = (read_i64(&f[F_ORDER], env, slot) + 1) << 32;
                const float px = (read_f32(&f[F_X], env, slot) - cam_x) * scale + 32.0f;
                const float py = (read_f32(&f[F_Y], env, slot) - cam_y) * neg_scale + 32.0f;
                const float width = texture_info[tex], height = texture_info[info_row + tex];
                const int64_t stride = (int64_t)texture_info[2 * info_row + tex];
                const int64_t base = (int64_t)texture_info[3 * info_row + tex];
                const int64_t col0 = (int64_t)floorf(px) - sb->half, row0 = (int64_t)floorf(py) - sb->half;
                /* the patch's pixels inside the frame: columns col0 + [i0, i1), rows row0 + [j0, j1) */
                const int64_t i0 = col0 < 0 ? -col0 : 0, i1 = col0 + sb->span > FRAME ? FRAME - col0 : sb->span;
                const int64_t j0 = row0 < 0 ? -row0 : 0, j1 = row0 + sb->span > FRAME ? FRAME - row0 : sb->span;
                if (i0 >= i1 || j0 >= j1) continue;
                const int64_t width_px = i1 - i0;
                uint32_t texels[FRAME * FRAME];  /* the patch's texels, row by row (0: transparent) */
                if (general) {  /* both texel coordinates depend on both pixel coordinates */
                    for (int64_t j = j0; j < j1; j++) {
                        const float dy = ((float)(row0 + j) + 0.5f) - py;
                        uint32_t *row_texels = texels + (j - j0) * width_px;
                        for (int64_t i = i0; i < i1; i++) {
                            const float dx = ((float)(col0 + i) + 0.5f) - px;
                            const float u = texel_coord(tile((dx * a + dy * b) / side_u + 0.5f, reps_u, tiled), width);
                            const float v = texel_coord(tile((dx * -b + dy * a) / side_v + 0.5f, reps_v, tiled), height);
                            row_texels[i - i0] = texel[base + (int64_t)v * stride + (int64_t)u];
                        }
                    }
                } else {  /* u from the column, v from the row: a table of each, then lookups */
                    int64_t column_texel[FRAME];
                    for (int64_t i = i0; i < i1; i++) {
                        const float dx = ((float)(col0 + i) + 0.5f) - px;
                        column_texel[i - i0] = (int64_t)texel_coord(tile((dx * a) / side_u + 0.5f, reps_u, tiled), width);
                    }
                    for (int64_t j = j0; j < j1; j++) {
                        const float dy = ((float)(row0 + j) + 0.5f) - py;
                        const int64_t row_texel = base + (int64_t)texel_coord(tile((dy * b) / side_v + 0.5f, reps_v, tiled), height) * stride;
                        uint32_t *row_texels = texels + (j - j0) * width_px;
                        for (int64_t i = 0; i < width_px; i++) row_texels[i] = texel[row_texel + column_texel[i]];
                    }
                }
                for (int64_t j = j0; j < j1; j++) {
                    const uint32_t *row_texels = texels + (j - j0) * width_px;
                    int64_t *at = canvas + (row0 + j) * FRAME + col0;
                    for (int64_t i = i0; i < i1; i++) {
                        if (!row_texels[i - i0]) continue;
                        const int64_t key = order_bits | row_texels[i - i0];
                        if (key > at[i]) {
                            if (at[i] == 0) touched[num_touched++] = (int16_t)(at + i - canvas);
                            at[i] = key;
                        }
                    }
                }
            }
        }
        uint8_t *out = frames + env * FRAME * FRAME * 3;
        for (int64_t k = 0; k < num_touched; k++) {
            const int64_t p = touched[k];
            const uint64_t key = (uint64_t)canvas[p];
            out[3 * p] = (uint8_t)key;
            out[3 * p + 1] = (uint8_t)(key >> 8);
            out[3 * p + 2] = (uint8_t)(key >> 16);
            canvas[p] = 0;
        }
        num_touched = 0;
    }
    return 0;
}
