# Installs the nmhash build tree into a scratch prefix, then configures,
# builds and runs the consumer project against it with find_package().
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
step(${CMAKE_COMMAND} --install ${NMHASH_BUILD_DIR} --prefix ${prefix})
# CONSUMER_WITHOUT_DEPENDENCIES: configure with Eigen, nlohmann-json, zlib
# and OpenMP disabled (find_package fails for them).
set(extra)
if(CONSUMER_WITHOUT_DEPENDENCIES)
  foreach(p Eigen3 nlohmann_json ZLIB OpenMP)
    list(APPEND extra -DCMAKE_DISABLE_FIND_PACKAGE_${p}=ON)
  endforeach()
endif()
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
     ${extra})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step(${WORK_DIR}/build/consumer)
