# Compiles nmhash's own targets TARGETS (comma-separated: every public
# header on its own, the test programs, the CPU benchmark programs) with
# clang, warnings as errors; examples and CUDA are left to the main build
# (the examples' library code is in the headers checked here). The
# benchmark programs are compiled only here when the test command runs. The check is about clang's
# diagnostics, which its front end gives: every unit goes through
# -fsyntax-only (syntax_only.sh), with no code generation or linking; the
# programs are built and run by the main build.
file(MAKE_DIRECTORY ${WORK_DIR})
# Ninja where installed, for a work directory not configured before.
set(generator)
find_program(ninja NAMES ninja ninja-build)
if(ninja AND NOT EXISTS ${WORK_DIR}/CMakeCache.txt)
  set(generator -G Ninja)
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR} ${generator}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0
    -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CURRENT_LIST_DIR}/syntax_only.sh
    -DCMAKE_CXX_LINKER_LAUNCHER=${CMAKE_CURRENT_LIST_DIR}/syntax_only.sh
    -DNMHASH_BUILD_BENCHMARKS=${BENCHMARKS} -DNMHASH_BUILD_EXAMPLES=OFF -DNMHASH_ENABLE_CUDA=OFF
    -DNMHASH_BUILD_PYTHON=OFF
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang configure failed:\n${out}\n${err}")
endif()
string(REPLACE "," ";" targets "${TARGETS}")
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} -j 2 --target ${targets}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang build failed:\n${out}\n${err}")
endif()
message(STATUS "clang compiled nmhash's own targets without a diagnostic")
