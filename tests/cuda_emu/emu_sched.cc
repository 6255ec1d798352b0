/* emu_sched.cc (cuda_emu): runs kernels: one fiber per CUDA thread, the threads of a block in
 * an order shuffled per block (seed HP_EMU_SEED, printed), blocks one after another in a
 * shuffled order; block barriers, warp collectives (shuffles, ballots, mma, ldmatrix) and the
 * per-block shared memory. Contract and limits: README.md in this folder. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "emu_device.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define HP_EMU_ASAN 1
#else
#define HP_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#error "cuda_emu: the fiber switch is written for x86-64 (see README.md)"
#endif

extern "C" void hp_emu_set_error(cudaError_t e); /* emu_cudart.cc */

/* Saves the callee-saved registers on the current stack, stores its pointer in *save, and
 * resumes the context whose stack pointer is `to` (System V x86-64). */
extern "C" void hp_emu_switch(void **save, void *to);
asm(".pushsection .text\n"
    ".globl hp_emu_switch\n"
    ".type hp_emu_switch,@function\n"
    "hp_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size hp_emu_switch, .-hp_emu_switch\n"
    ".popsection\n");

namespace hp_emu {

Thread *cur;
uint3 block_idx;
dim3 block_dim, grid_dim;

namespace {

enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };
const size_t STACK_BYTES = 512 << 10;

struct Fiber : Thread {
    void *sp;
    char *stack;
    unsigned color; /* stack top offset: tops 512 KiB apart would share cache sets */
    unsigned tid;   /* linear index in the block = index in pool */
};

struct Warp {
    unsigned live, arrived, mask, gen;
    const char *op;
    alignas(16) unsigned char slot[2][32][32];
};

struct Slot {
    void *p;
    size_t bytes;
    const char *name;
};

/* never destroyed: fibers may still be parked when the process exits */
std::vector<Fiber *> &pool = *new std::vector<Fiber *>;
std::vector<Warp> &warps = *new std::vector<Warp>;
std::vector<Slot> &slots = *new std::vector<Slot>;
void *dyn_smem;
size_t dyn_bytes;
unsigned blk_live, blk_arrived, blk_gen, blk_done, blk_threads;
int blk_acc[2], blk_n[2];
void *sched_sp;
const char *kname;
void (*kbody)(void *);
void *kctx;
uint64_t rng_state;
unsigned char tstate[1024]; /* READY / WAIT_* / DONE per thread of the block, compact for the scheduler */
#if HP_EMU_ASAN
const void *main_bottom;
size_t main_size;
#endif

uint64_t rnd() {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void shuffle(std::vector<unsigned> &v) {
    for (size_t i = v.size(); i > 1; i--) {
        size_t j = rnd() % i;
        unsigned t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

void where(FILE *f) {
    if (!kname) return;
    fprintf(f, "cuda_emu: in kernel %s, block (%u,%u,%u) of grid (%u,%u,%u)", kname, block_idx.x,
            block_idx.y, block_idx.z, grid_dim.x, grid_dim.y, grid_dim.z);
    if (cur)
        fprintf(f, ", thread (%u,%u,%u) (warp %u lane %u)", cur->idx.x, cur->idx.y, cur->idx.z,
                cur->warp, cur->lane);
    fprintf(f, "\n");
}

#if HP_EMU_ASAN
void asan_report(const char *report) {
    (void)report;
    where(stderr);
}
#endif

void to_sched() {
    Fiber *f = static_cast<Fiber *>(cur);
#if HP_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, main_bottom, main_size);
#endif
    hp_emu_switch(&f->sp, sched_sp);
#if HP_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

void to_fiber(Fiber *f) {
    cur = f;
#if HP_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f->stack, STACK_BYTES);
#endif
    hp_emu_switch(&sched_sp, f->sp);
#if HP_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    cur = nullptr;
}

void release_block() {
    for (unsigned i = 0; i < blk_threads; i++)
        if (tstate[i] == WAIT_BLOCK) tstate[i] = READY;
    blk_n[blk_gen & 1] = (int)blk_arrived;
    blk_arrived = 0;
    blk_gen++;
    blk_acc[blk_gen & 1] = 0;
}

void release_warp(Warp &w, unsigned wi) {
    if (w.mask != w.arrived)
        fatal("%s with mask %#x, but the live lanes of warp %u are %#x (a lane named in the mask "
              "has exited or diverged)", w.op, w.mask, wi, w.arrived);
    for (unsigned l = 0; l < 32; l++)
        if ((w.arrived >> l) & 1u) tstate[wi * 32 + l] = READY;
    w.arrived = 0;
    w.gen++;
}

void thread_exit() {
    Fiber *f = static_cast<Fiber *>(cur);
    tstate[f->tid] = DONE;
    blk_live--;
    blk_done++;
    Warp &w = warps[f->warp];
    w.live &= ~(1u << f->lane);
    if (w.arrived && w.arrived == w.live) release_warp(w, f->warp);
    if (blk_arrived && blk_arrived == blk_live) release_block();
    to_sched();
}

void fiber_main() {
#if HP_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &main_bottom, &main_size);
#endif
    for (;;) {
        kbody(kctx);
        thread_exit();
    }
}

Fiber *new_fiber() {
    Fiber *f = new Fiber();
    void *m = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) fatal("cannot map a fiber stack");
    mprotect(m, 4096, PROT_NONE); /* a guard page: a stack overflow faults */
    f->stack = static_cast<char *>(m);
    f->color = (unsigned)(pool.size() * 1088 % 65536);
    f->tid = (unsigned)pool.size();
    return f;
}

/* A fresh context that enters fiber_main: six zero registers, then fiber_main as the return
 * address, placed so that fiber_main starts with rsp = 8 (mod 16) as after a call. */
void reset_fiber(Fiber *f) {
    uintptr_t top = ((uintptr_t)f->stack + STACK_BYTES - f->color) & ~(uintptr_t)15;
    void **s = reinterpret_cast<void **>(top - 8);
    *--s = reinterpret_cast<void *>(&fiber_main);
    for (int i = 0; i < 6; i++) *--s = nullptr;
    f->sp = s;
}

void free_shared() {
    for (Slot &s : slots) {
        free(s.p);
        s.p = nullptr;
    }
    free(dyn_smem);
    dyn_smem = nullptr;
}

void deadlock() {
    unsigned at_bar = 0, at_warp = 0;
    for (unsigned i = 0; i < blk_threads; i++) {
        at_bar += tstate[i] == WAIT_BLOCK;
        at_warp += tstate[i] == WAIT_WARP;
    }
    cur = nullptr;
    fatal("deadlock: %u threads wait at __syncthreads and %u at a warp-synchronous operation, %u "
          "have exited (a barrier under divergent control flow)", at_bar, at_warp, blk_done);
}

void run_block(const LaunchCfg &c, std::vector<unsigned> &order) {
    unsigned n = blk_threads;
    for (unsigned i = 0; i < n; i++) {
        Fiber *f = pool[i];
        f->idx.x = i % c.block.x;
        f->idx.y = i / c.block.x % c.block.y;
        f->idx.z = i / (c.block.x * c.block.y);
        f->lane = i & 31;
        f->warp = i >> 5;
        tstate[f->tid] = READY;
    }
    for (unsigned w = 0; w < warps.size(); w++) {
        unsigned lanes = n - w * 32 < 32 ? n - w * 32 : 32;
        warps[w].live = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
        warps[w].arrived = 0;
    }
    blk_live = n;
    blk_arrived = blk_done = 0;
    blk_acc[0] = blk_acc[1] = 0;
    dyn_bytes = c.smem;
    dyn_smem = malloc(c.smem ? c.smem : 1);
    memset(dyn_smem, 0xff, c.smem);
    shuffle(order);
    while (blk_done < n) {
        unsigned ran = 0;
        for (unsigned i : order)
            if (tstate[i] == READY) {
                to_fiber(pool[i]);
                ran++;
            }
        if (!ran && blk_done < n) deadlock();
    }
    free_shared();
}

} /* namespace */

void fatal(const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "cuda_emu: ERROR: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    where(stderr);
    abort();
}

void syncthreads() {
    Fiber *f = static_cast<Fiber *>(cur);
    tstate[f->tid] = WAIT_BLOCK;
    if (++blk_arrived == blk_live) {
        release_block();
        tstate[f->tid] = READY;
    } else {
        to_sched();
    }
}

int syncthreads_reduce(int pred, int op) {
    unsigned g = blk_gen & 1;
    blk_acc[g] += pred != 0;
    syncthreads();
    int cnt = blk_acc[g], all = blk_n[g];
    return op == 0 ? cnt : op == 1 ? cnt == all : cnt > 0;
}

const unsigned char *warp_exchange(unsigned mask, const void *mine, size_t n, const char *op) {
    Fiber *f = static_cast<Fiber *>(cur);
    Warp &w = warps[f->warp];
    unsigned bit = 1u << f->lane;
    if (!(mask & bit)) fatal("%s: the calling lane %u is not in the mask %#x", op, f->lane, mask);
    if (!w.arrived) {
        w.mask = mask;
        w.op = op;
    } else if (w.mask != mask || (w.op != op && strcmp(w.op, op))) {
        fatal("lanes of one warp meet at different warp operations: %s (mask %#x) and %s (mask %#x)",
              w.op, w.mask, op, mask);
    }
    unsigned char *s = w.slot[w.gen & 1][0];
    if (n) memcpy(s + 32 * f->lane, mine, n);
    w.arrived |= bit;
    tstate[f->tid] = WAIT_WARP;
    if (w.arrived == w.live) {
        release_warp(w, f->warp);
        tstate[f->tid] = READY;
    } else {
        to_sched();
    }
    return s;
}

void *shared_slot(int id, size_t bytes, const char *name) {
    if ((size_t)id >= slots.size()) slots.resize(id + 1, Slot{nullptr, 0, nullptr});
    Slot &s = slots[id];
    if (!s.p) {
        s.p = malloc(bytes);
        memset(s.p, 0xff, bytes); /* NaN / -1: what an unwritten read then computes with */
        s.bytes = bytes;
        s.name = name;
    }
    return s.p;
}

void *shared_dynamic() { return dyn_smem; }

static int in_shared(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    for (const Slot &s : slots)
        if (s.p && a >= (uintptr_t)s.p && a + n <= (uintptr_t)s.p + s.bytes) return 1;
    return a >= (uintptr_t)dyn_smem && a + n <= (uintptr_t)dyn_smem + dyn_bytes;
}

void run_grid(const char *name, const LaunchCfg &c, void (*body)(void *), void *ctx) {
    static int seeded;
    if (!seeded) {
        const char *s = getenv("HP_EMU_SEED");
        rng_state = s ? strtoull(s, nullptr, 0) : ((uint64_t)time(nullptr) << 20) ^ (uint64_t)getpid();
        fprintf(stderr, "cuda_emu: thread order seed %llu (HP_EMU_SEED=%llu repeats it)\n",
                (unsigned long long)rng_state, (unsigned long long)rng_state);
#if HP_EMU_ASAN
        __asan_set_error_report_callback(asan_report);
#endif
        seeded = 1;
    }
    unsigned long long nt = (unsigned long long)c.block.x * c.block.y * c.block.z;
    if (nt == 0 || nt > 1024 || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 ||
        c.grid.z == 0 || c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535) {
        hp_emu_set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (c.smem > 48 * 1024) { /* needs cudaFuncSetAttribute, which nothing here calls */
        hp_emu_set_error(cudaErrorInvalidValue);
        return;
    }
    blk_threads = (unsigned)nt;
    while (pool.size() < nt) pool.push_back(new_fiber());
    for (unsigned i = 0; i < nt; i++) reset_fiber(pool[i]);
    warps.resize((nt + 31) / 32);
    kname = name;
    kbody = body;
    kctx = ctx;
    grid_dim = c.grid;
    block_dim = c.block;
    size_t nb = (size_t)c.grid.x * c.grid.y * c.grid.z;
    std::vector<unsigned> border(nb < 1u << 20 ? nb : 0), order(nt);
    for (unsigned i = 0; i < nt; i++) order[i] = i;
    for (size_t i = 0; i < border.size(); i++) border[i] = (unsigned)i;
    shuffle(border);
    for (size_t i = 0; i < nb; i++) {
        size_t b = border.empty() ? i : border[i];
        block_idx.x = (unsigned)(b % c.grid.x);
        block_idx.y = (unsigned)(b / c.grid.x % c.grid.y);
        block_idx.z = (unsigned)(b / ((size_t)c.grid.x * c.grid.y));
        run_block(c, order);
    }
    kname = nullptr;
}

} /* namespace hp_emu */

/* ---- tensor cores, from the PTX ISA fragment layouts (mma.m16n8k16 .bf16, ldmatrix) ------------ */

static float bf16_half(const unsigned char *all, int lane, int reg, int hi) {
    uint32_t v;
    memcpy(&v, all + 32 * lane + 4 * reg, 4);
    return __uint_as_float((hi ? v >> 16 : v & 0xffffu) << 16);
}

/* D = A·B + C, A 16×16 row-major, B 16×8 column-major, fp32 C/D. Lane l = 4·gr + tg holds
 * A regs {(gr, 2tg..+1), (gr+8, 2tg..+1), (gr, 2tg+8..+9), (gr+8, 2tg+8..+9)}, B regs
 * {(k = 2tg..+1, n = gr), (k = 2tg+8..+9, n = gr)}, C {(gr, 2tg), (gr, 2tg+1), (gr+8, 2tg),
 * (gr+8, 2tg+1)}. The products are exact; they are summed in fp64 and added to C with one
 * rounding to fp32 (the hardware's internal order and width are not specified). */
void hp_emu_mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    uint32_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
    const unsigned char *all = hp_emu::warp_exchange(0xffffffffu, mine, sizeof mine,
                                                     "mma.sync.aligned.m16n8k16.row.col.f32.bf16");
    int lane = (int)hp_emu::cur->lane, gr = lane >> 2, tg = lane & 3;
    float ar[2][16], bc[2][16]; /* rows gr, gr+8 of A; columns 2tg, 2tg+1 of B */
    for (int k = 0; k < 16; k++) {
        int kl = (k & 7) >> 1, kh = k >> 3, half = k & 1;
        for (int h = 0; h < 2; h++) {
            ar[h][k] = bf16_half(all, 4 * gr + kl, h + 2 * kh, half);
            bc[h][k] = bf16_half(all, 4 * (2 * tg + h) + kl, 4 + kh, half);
        }
    }
    for (int i = 0; i < 4; i++) {
        const float *ra = ar[i >> 1], *cb = bc[i & 1];
        double s = 0;
        for (int k = 0; k < 16; k++) s += (double)ra[k] * cb[k];
        c[i] = (float)(s + c[i]);
    }
}

/* ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: lanes 8i..8i+7 give the row addresses of
 * matrix i (16-byte aligned, in shared memory); with .trans, lane l = 4·gr + tg receives in
 * r[i] the elements (row 2tg, col gr) and (row 2tg+1, col gr) of matrix i, low half first. */
void hp_emu_ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    if ((uintptr_t)p & 15) hp_emu::fatal("ldmatrix: row address %p is not 16-byte aligned", p);
    if (!hp_emu::in_shared(p, 16)) hp_emu::fatal("ldmatrix: row address %p is not in the block's shared memory", p);
    const unsigned char *all = hp_emu::warp_exchange(0xffffffffu, &p, sizeof p,
                                                     "ldmatrix.sync.aligned.m8n8.x4.trans");
    int lane = (int)hp_emu::cur->lane, gr = lane >> 2, tg = lane & 3;
    for (int i = 0; i < 4; i++) {
        uint16_t h[2];
        for (int j = 0; j < 2; j++) {
            const unsigned char *row;
            memcpy(&row, all + 32 * (8 * i + 2 * tg + j), sizeof row);
            memcpy(&h[j], row + 2 * gr, 2);
        }
        r[i] = (uint32_t)h[0] | (uint32_t)h[1] << 16;
    }
}
