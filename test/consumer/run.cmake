# Installs the nmhash build tree into a scratch prefix, then configures,
# builds and runs the consumer project against it with find_package().
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${WORK_DIR})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
step(${CMAKE_COMMAND} --install ${NMHASH_BUILD_DIR} --prefix ${prefix})
# CONSUMER_DISABLE: packages (comma-separated) the consumer is configured
# without (find_package fails for them): what the components it asks for
# must not need.
set(extra)
string(REPLACE "," ";" disabled "${CONSUMER_DISABLE}")
foreach(p IN LISTS disabled)
  list(APPEND extra -DCMAKE_DISABLE_FIND_PACKAGE_${p}=ON)
endforeach()
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
     ${extra})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step(${WORK_DIR}/build/consumer)
