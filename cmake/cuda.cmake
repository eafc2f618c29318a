# Decide whether fastconv._cuda can be built, and say so in the build log either way.
# Sets FASTCONV_CUDA_BUILT (bool), FASTCONV_CUDA_REASON (why not), FASTCONV_CUDA_ARCHS_STR,
# FASTCONV_CUBLAS_VERSION, FASTCONV_CUBLAS_MAJOR, and the imported target fastconv_cublas (cuBLAS,
# and cuBLASLt through it).

# The facts the build backend and _native.py read too, defined once in python/fastconv/_cuda_facts.py.
file(READ "${CMAKE_CURRENT_SOURCE_DIR}/python/fastconv/_cuda_facts.py" _facts)
foreach(_fact CUBLAS_MAJOR NVCC_HOME_VARS NVCC_DEFAULT_HOME)
  if(NOT _facts MATCHES "\n${_fact} = ([^\n]+)")
    message(FATAL_ERROR "fastconv: python/fastconv/_cuda_facts.py lacks a line '${_fact} = ...'")
  endif()
  string(REGEX MATCHALL "[A-Za-z0-9_/.]+" _value "${CMAKE_MATCH_1}")  # quotes, parens, commas out
  set(FASTCONV_${_fact} "${_value}")
endforeach()
set(_cublas_so "libcublas.so.${FASTCONV_CUBLAS_MAJOR}")

string(TOUPPER "${FASTCONV_CUDA}" _mode)
set(FASTCONV_CUDA_BUILT OFF)
set(FASTCONV_CUDA_REASON "")
set(FASTCONV_CUDA_ARCHS_STR "")
set(FASTCONV_CUBLAS_VERSION "")

if(_mode MATCHES "^(OFF|0|FALSE|NO)$")
  set(FASTCONV_CUDA_REASON "disabled with FASTCONV_CUDA=OFF")
elseif(_mode STREQUAL "EMULATOR")
  # For tests on machines without a GPU: _cuda against the CPU emulator (cmake/cuda_emulator.cmake).
  set(FASTCONV_CUDA_BUILT ON)
  set(FASTCONV_CUDA_EMULATED ON)
  set(FASTCONV_CUDA_ARCHS_STR "emulator")
  set(FASTCONV_CUBLAS_VERSION "emulator")
  message(STATUS "fastconv: CUDA module: built against the CPU emulator (csrc/cuda_emu), for tests")
elseif(NOT _mode MATCHES "^(AUTO|ON|1|TRUE|YES)$")
  message(FATAL_ERROR "fastconv: FASTCONV_CUDA must be AUTO, ON, OFF or EMULATOR, not '${FASTCONV_CUDA}'")
else()
  # check_language looks at CUDACXX and PATH; nvcc off PATH under CUDA_HOME, CUDA_PATH or the
  # default home still counts as present (the backend's find_nvcc follows the same rule).
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_nvcc_on_path nvcc NO_CACHE NO_DEFAULT_PATH PATHS ENV PATH)  # PATH only
    if(NOT _nvcc_on_path)
      set(_homes "")
      foreach(_var IN LISTS FASTCONV_NVCC_HOME_VARS)
        list(APPEND _homes "$ENV{${_var}}")
      endforeach()
      foreach(_home IN LISTS _homes FASTCONV_NVCC_DEFAULT_HOME)
        if(_home AND EXISTS "${_home}/bin/nvcc" AND NOT IS_DIRECTORY "${_home}/bin/nvcc")
          set(ENV{CUDACXX} "${_home}/bin/nvcc")
          break()
        endif()
      endforeach()
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(FASTCONV_CUDA_REASON "no CUDA compiler (nvcc) found on PATH, in CUDACXX or in ${FASTCONV_NVCC_DEFAULT_HOME}")
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
print(next(str(d / 'cu${FASTCONV_CUBLAS_MAJOR}') for d in map(p.Path, s.submodule_search_locations) \
if (d / 'cu${FASTCONV_CUBLAS_MAJOR}/lib/${_cublas_so}').exists()))")
    if(NOT CUDAToolkit_FOUND)
      set(FASTCONV_CUDA_REASON "nvcc found at ${CMAKE_CUDA_COMPILER} but the CUDA toolkit is incomplete")
    elseif(_wheel_cublas)
      # The wheel ships versioned libraries only, which FindCUDAToolkit does not look for.
      add_library(fastconv_cublaslt SHARED IMPORTED)
      set_target_properties(fastconv_cublaslt PROPERTIES
        IMPORTED_LOCATION "${_wheel_cublas}/lib/libcublasLt.so.${FASTCONV_CUBLAS_MAJOR}")
      add_library(fastconv_cublas SHARED IMPORTED)
      set_target_properties(fastconv_cublas PROPERTIES
        IMPORTED_LOCATION "${_wheel_cublas}/lib/${_cublas_so}"
        INTERFACE_INCLUDE_DIRECTORIES "${_wheel_cublas}/include"
        INTERFACE_LINK_LIBRARIES fastconv_cublaslt)
      set(FASTCONV_CUDA_BUILT ON)
      set(_cublas_header "${_wheel_cublas}/include/cublas_api.h")
      set(_cublas_from "the nvidia-cublas wheel at ${_wheel_cublas}")
    elseif(TARGET CUDA::cublas)
      add_library(fastconv_cublas INTERFACE)
      target_link_libraries(fastconv_cublas INTERFACE CUDA::cublas CUDA::cublasLt)
      set(FASTCONV_CUDA_BUILT ON)
      set(_cublas_header "${CUDAToolkit_INCLUDE_DIRS}/cublas_api.h")
      set(_cublas_from "the CUDA toolkit")
    else()
      set(_major ${FASTCONV_CUBLAS_MAJOR})
      math(EXPR _next "${_major} + 1")
      set(FASTCONV_CUDA_REASON
          "nvcc ${CMAKE_CUDA_COMPILER_VERSION} found but no cuBLAS ${_major} (pip install 'nvidia-cublas>=${_major},<${_next}', or a CUDA toolkit with cuBLAS)")
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
