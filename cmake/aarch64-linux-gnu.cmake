# Cross-compiling for aarch64 Linux with Debian's crossbuild-essential-arm64
# and the :arm64 libraries (scripts/test-arm64.sh installs both). Test
# binaries run under qemu-user, which also lets gtest_discover_tests list them.
# MODELBUILD_ARM64_SYSROOT holds the -dev packages Debian cannot install
# beside their amd64 twins (not Multi-Arch: same); test-arm64.sh unpacks them.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(sysroot "$ENV{MODELBUILD_ARM64_SYSROOT}")
list(APPEND CMAKE_PREFIX_PATH "${sysroot}/usr")
# Libraries and headers of the target, but programs of the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(ENV{PKG_CONFIG_LIBDIR} "${sysroot}/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
# Libraries in the sysroot need others from there (libcurl's runtime
# dependencies): let the linker find them.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${sysroot}/usr/lib/aarch64-linux-gnu -Wl,-rpath-link,${sysroot}/lib/aarch64-linux-gnu")
