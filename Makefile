# headpursuit build. `make` builds ./headpursuit (CPU backend always; the CUDA backend too when
# nvcc is found, unless NO_CUDA=1). `make test` builds and runs the test suite. `make fuzz`
# builds the libFuzzer harnesses with clang + ASan/UBSan. `make bench` builds bench/.

CC      ?= gcc
NVCC    ?= nvcc
OPT     ?= -O2
# Built and run on the same machine (CI builds from source): use its vector units.
ARCH_FLAGS ?= -march=native
# host/ is split by role (model/ and backends, method/, eval/, pipeline/, cli/, util/); every
# folder is on the include path.
HOST_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard host/*/*.c host/*/*.h))))
HOST_INC  := $(addprefix -I,$(HOST_DIRS))
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH_FLAGS) -g -Wall -Wextra -Werror -fopenmp -MMD -MP \
           -Iweights -Ikernels $(HOST_INC) -I/usr/include/cjson
comma := ,
# OpenBLAS built on OpenMP shares our thread pool (the pthread build oversubscribes the cores).
OPENBLAS_DIR ?= $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp))
BLAS_LIBS := $(if $(OPENBLAS_DIR),-L$(OPENBLAS_DIR) -Wl$(comma)-rpath$(comma)$(OPENBLAS_DIR)) -lopenblas
LDLIBS  += -lcjson -lpcre2-8 $(BLAS_LIBS) -lpng -ljpeg -lz -lm -fopenmp

CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
ifeq ($(NO_CUDA),1)
  HAVE_CUDA :=
else ifneq ($(CUDA_HOME),)
  HAVE_CUDA := 1
endif

# Objects of the CPU-only and the CUDA configuration never mix: one build folder each.
BUILD   ?= build/$(if $(HAVE_CUDA),cuda,cpu)

# Hopper first (sm_90a for wgmma/TMA), plus PTX so newer GPUs can JIT.
CUDA_ARCH ?= -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90
NVFLAGS   += -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-Werror -Iweights -Ikernels $(HOST_INC) \
             -lineinfo --expt-relaxed-constexpr -MMD -MP

C_SRC   := $(wildcard weights/*.c kernels/*.c host/*/*.c)
LIB_SRC := $(filter-out host/cli/main.c,$(C_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CU_SRC  := $(wildcard kernels/*.cu host/*/*.cu)
ifeq ($(HAVE_CUDA),1)
  CU_OBJ  := $(CU_SRC:%.cu=$(BUILD)/%.cu.o)
  CFLAGS  += -DHP_HAVE_CUDA -I$(CUDA_HOME)/include
  LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcusolver -lcudart -lstdc++
  DETECT  := CUDA backend: yes ($(CUDA_HOME))
else
  CU_OBJ  :=
  DETECT  := CUDA backend: no$(if $(NO_CUDA), (NO_CUDA=1), (nvcc not found))
endif

TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all test fuzz bench clean detect headpursuit
all: detect headpursuit

detect:
	@echo "headpursuit: $(DETECT)"

headpursuit: $(BUILD)/host/cli/main.o $(BUILD)/libhp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libhp.a: $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libhp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libhp.a -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libhp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libhp.a $(LDLIBS)

test: detect headpursuit $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run_tests.sh

bench: headpursuit $(BENCH_BIN)

# Fuzz harnesses: clang, libFuzzer, ASan + UBSan, CPU-only sources.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Iweights -Ikernels $(HOST_INC) -I/usr/include/cjson
FUZZ_LIB_SRC := $(wildcard weights/*.c)
fuzz: $(FUZZ_BIN)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ -lcjson -lpcre2-8 -lpng -ljpeg -lz -lm

clean:
	rm -rf $(BUILD) $(EMU) headpursuit

include tests/cuda_emu/emu.mk

-include $(LIB_OBJ:.o=.d) $(BUILD)/host/cli/main.d $(CU_OBJ:.o=.d)
