# emu.mk: the CUDA backend built against the CPU emulation of the CUDA thread model
# (tests/cuda_emu/README.md), included by the Makefile. Needs only g++ and python3, no nvcc.
#   make emu        build/emu/tests/test_cuda_ops and test_somp_cuda on the emulated backend
# EMU_KSRC/EMU_KOUT let tests/test_cuda_mutations.sh build the same tests from altered copies
# of the kernels while reusing everything else.

EMU       ?= build/emu
EMU_KSRC  ?= kernels
EMU_KOUT  ?= $(EMU)/k
EMU_CXX   ?= g++
EMU_SAN   ?= -fsanitize=address -fno-omit-frame-pointer
EMU_INC   := -Itests/cuda_emu/include
EMU_DEFS  := -DHP_HAVE_CUDA -DHP_CUDA_EMU
EMU_CFLAGS   := $(filter-out -I$(CUDA_HOME)/include -DHP_HAVE_CUDA,$(CFLAGS)) $(EMU_DEFS) $(EMU_INC)
# Kernels as host C++: -O1 keeps the sanitizer's reports exact and the compile quick; the
# CUDA sources pun types through pointers (uint4 <-> bf16x2) as nvcc allows, hence
# -fno-strict-aliasing; `#pragma unroll` is nvcc's, and nvcc does not apply -Wsign-compare to
# device code (threadIdx.x is unsigned).
EMU_CXXFLAGS := -std=c++17 -O1 -g $(ARCH_FLAGS) -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-sign-compare \
                -fno-strict-aliasing $(EMU_SAN) $(EMU_DEFS) $(EMU_INC) -Iweights -Ikernels $(HOST_INC) \
                -include cuda_runtime.h -MMD -MP
EMU_RT_FLAGS := -std=c++17 -O2 -g $(ARCH_FLAGS) -Wall -Wextra -Werror $(EMU_SAN) $(EMU_INC) -MMD -MP
EMU_LDLIBS := $(filter-out -lcublasLt -lcublas -lcusolver -lcudart -L$(CUDA_HOME)/lib64 \
                -Wl$(comma)-rpath$(comma)$(CUDA_HOME)/lib64,$(LDLIBS)) -llapacke -llapack -lstdc++

EMU_CU   := $(notdir $(wildcard kernels/*.cu))
EMU_KOBJ := $(EMU_CU:%.cu=$(EMU_KOUT)/%.cu.o)
EMU_COBJ := $(LIB_SRC:%.c=$(EMU)/%.o)
EMU_RT   := $(patsubst tests/cuda_emu/%.cc,$(EMU)/rt/%.o,$(wildcard tests/cuda_emu/*.cc))
EMU_TESTS := $(EMU_KOUT)/tests/test_cuda_ops $(EMU_KOUT)/tests/test_somp_cuda $(EMU)/selftest

.PHONY: emu
emu: $(EMU_TESTS)
test: emu
# Built through pattern rules only, so make would delete them as intermediate files at the end
# of a run (the mutation tests copy them, and a second make would relink without them).
.SECONDARY: $(EMU_KOBJ) $(EMU_KOBJ:.o=.cc) $(EMU)/st/selftest.cu.cc

$(EMU)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(EMU_CFLAGS) -c -o $@ $<

$(EMU)/rt/%.o: tests/cuda_emu/%.cc
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_RT_FLAGS) -c -o $@ $<

$(EMU_KOUT)/%.cu.cc: $(EMU_KSRC)/%.cu tests/cuda_emu/rewrite_cu.py
	@mkdir -p $(dir $@)
	python3 tests/cuda_emu/rewrite_cu.py $< $@

$(EMU_KOUT)/%.cu.o: $(EMU_KOUT)/%.cu.cc
	$(EMU_CXX) $(EMU_CXXFLAGS) -c -o $@ $<

$(EMU)/libhp_emu.a: $(EMU_COBJ) $(EMU_RT)
	@rm -f $@
	ar rcs $@ $^

$(EMU_KOUT)/tests/%: tests/%.c $(EMU_KOBJ) $(EMU)/libhp_emu.a
	@mkdir -p $(dir $@)
	$(CC) $(EMU_CFLAGS) $(EMU_SAN) -Itests -o $@ $< $(EMU_KOBJ) $(EMU)/libhp_emu.a -lcmocka $(EMU_LDLIBS)

# The emulator's own primitives (tests/cuda_emu/selftest.cu), through the same rewrite.
$(EMU)/st/selftest.cu.cc: tests/cuda_emu/selftest.cu tests/cuda_emu/rewrite_cu.py
	@mkdir -p $(dir $@)
	python3 tests/cuda_emu/rewrite_cu.py $< $@

$(EMU)/selftest: $(EMU)/st/selftest.cu.cc $(EMU_RT)
	$(EMU_CXX) $(EMU_CXXFLAGS) -o $@ $< $(EMU_RT) -llapacke -llapack

-include $(EMU)/selftest.d $(EMU_COBJ:.o=.d) $(EMU_RT:.o=.d) $(EMU_KOBJ:.o=.d)
