# Decide whether fastconv._cuda can be built, and say so in the build log either way.
# Sets FASTCONV_CUDA_BUILT (bool), FASTCONV_CUDA_REASON (why not), FASTCONV_CUDA_ARCHS_STR,
# FASTCONV_CUBLAS_VERSION, and the imported target fastconv_cublas.

string(TOUPPER "${FASTCONV_CUDA}" _mode)
set(FASTCONV_CUDA_BUILT OFF)
set(FASTCONV_CUDA_REASON "")
set(FASTCONV_CUDA_ARCHS_STR "")
set(FASTCONV_CUBLAS_VERSION "")

if(_mode MATCHES "^(OFF|0|FALSE|NO)$")
  set(FASTCONV_CUDA_REASON "disabled with FASTCONV_CUDA=OFF")
elseif(NOT _mode MATCHES "^(AUTO|ON|1|TRUE|YES)$")
  message(FATAL_ERROR "fastconv: FASTCONV_CUDA must be AUTO, ON or OFF, not '${FASTCONV_CUDA}'")
else()
  # nvcc off PATH in its standard place still counts as present.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(FASTCONV_CUDA_REASON "no CUDA compiler (nvcc) found on PATH, in CUDACXX or in /usr/local/cuda")
  else()
    # Must precede enable_language: 'native' needs a GPU at build time. Machine code for A100 (sm_80)
    # and H100/H200 (sm_90), plus sm_90 PTX that newer cards JIT-compile.
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit)
    fastconv_python_query(_wheel_cublas
      "import importlib.util as u, pathlib as p; s = u.find_spec('nvidia'); \
print(next(str(d / 'cu13') for d in map(p.Path, s.submodule_search_locations) \
if (d / 'cu13/lib/libcublas.so.13').exists()))")
    if(NOT CUDAToolkit_FOUND)
      set(FASTCONV_CUDA_REASON "nvcc found at ${CMAKE_CUDA_COMPILER} but the CUDA toolkit is incomplete")
    elseif(_wheel_cublas)
      # The wheel ships versioned libraries only, which FindCUDAToolkit does not look for.
      add_library(fastconv_cublas SHARED IMPORTED)
      set_target_properties(fastconv_cublas PROPERTIES
        IMPORTED_LOCATION "${_wheel_cublas}/lib/libcublas.so.13"
        INTERFACE_INCLUDE_DIRECTORIES "${_wheel_cublas}/include")
      set(FASTCONV_CUDA_BUILT ON)
      set(_cublas_header "${_wheel_cublas}/include/cublas_api.h")
      set(_cublas_from "the nvidia-cublas wheel at ${_wheel_cublas}")
    elseif(TARGET CUDA::cublas)
      add_library(fastconv_cublas INTERFACE)
      target_link_libraries(fastconv_cublas INTERFACE CUDA::cublas)
      set(FASTCONV_CUDA_BUILT ON)
      set(_cublas_header "${CUDAToolkit_INCLUDE_DIRS}/cublas_api.h")
      set(_cublas_from "the CUDA toolkit")
    else()
      set(FASTCONV_CUDA_REASON
          "nvcc ${CMAKE_CUDA_COMPILER_VERSION} found but no cuBLAS 13 (pip install 'nvidia-cublas>=13,<14', or a CUDA toolkit with cuBLAS)")
    endif()
    if(FASTCONV_CUDA_BUILT)
      file(STRINGS "${_cublas_header}" _ver REGEX "#define CUBLAS_VER_(MAJOR|MINOR|PATCH|BUILD) ")
      string(REGEX REPLACE "[^0-9;]*#define CUBLAS_VER_[A-Z]+ +([0-9]+)" "\\1" _ver "${_ver}")
      string(REPLACE ";" "." FASTCONV_CUBLAS_VERSION "${_ver}")
      string(REPLACE ";" "," FASTCONV_CUDA_ARCHS_STR "${CMAKE_CUDA_ARCHITECTURES}")
      message(STATUS "fastconv: CUDA module: building with nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                     "archs ${FASTCONV_CUDA_ARCHS_STR}, cuBLAS ${FASTCONV_CUBLAS_VERSION} from ${_cublas_from}")
    endif()
  endif()
endif()

if(NOT FASTCONV_CUDA_BUILT)
  if(_mode MATCHES "^(ON|1|TRUE|YES)$")
    message(FATAL_ERROR "fastconv: FASTCONV_CUDA=ON but the CUDA module cannot be built: ${FASTCONV_CUDA_REASON}")
  endif()
  message(STATUS "fastconv: CUDA module: not built: ${FASTCONV_CUDA_REASON}")
endif()
