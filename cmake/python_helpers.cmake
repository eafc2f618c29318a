# Locate build dependencies that come as Python packages (pybind11, scipy-openblas32), asking the
# interpreter that runs the build, so a plain `cmake` works as well as pip's isolated build.

function(fastconv_python_query out code)
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "${code}"
                  OUTPUT_VARIABLE value RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(rc EQUAL 0)
    set(${out} "${value}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# Neither location is cached: pip's isolated build environment lives in a new temporary folder each
# time, and a reused build folder (scikit-build-core's build-dir) would otherwise keep stale paths.
macro(fastconv_find_pybind11)
  if(NOT pybind11_DIR OR NOT EXISTS "${pybind11_DIR}")
    fastconv_python_query(pybind11_DIR "import pybind11; print(pybind11.get_cmake_dir())")
  endif()
  find_package(pybind11 CONFIG REQUIRED)
endmacro()

function(fastconv_find_openblas)
  fastconv_python_query(dirs
    "import scipy_openblas32 as s; print(s.get_include_dir() + ';' + s.get_lib_dir())")
  if(NOT dirs)
    message(FATAL_ERROR "fastconv: the scipy-openblas32 package is required to build "
                        "(pip install scipy-openblas32); ${Python_EXECUTABLE} cannot import it")
  endif()
  list(GET dirs 0 inc)
  list(GET dirs 1 lib)
  find_library(FASTCONV_OPENBLAS_LIB NAMES scipy_openblas PATHS "${lib}" NO_DEFAULT_PATH NO_CACHE REQUIRED)
  fastconv_python_query(version
    "import importlib.metadata as m; print(m.version('scipy-openblas32'))")
  add_library(fastconv_blas INTERFACE)
  target_include_directories(fastconv_blas SYSTEM INTERFACE "${inc}")
  target_link_libraries(fastconv_blas INTERFACE "${FASTCONV_OPENBLAS_LIB}")
  set(FASTCONV_BLAS_VERSION "${version}" PARENT_SCOPE)
  message(STATUS "fastconv: BLAS: scipy-openblas32 ${version} (${FASTCONV_OPENBLAS_LIB})")
endfunction()
