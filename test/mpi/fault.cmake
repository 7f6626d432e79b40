# A 2-rank search in which rank 1 dies (MODE --die-at-rank) or alone meets
# an error (--throw-at-rank), or a 2-rank training run in which rank 1 dies
# (--die-in-training): the job must end, with a non-zero status and a
# message naming what happened, well before ctest's timeout.
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIEXEC} ${NP_FLAG} 2 ${TEST_BIN} ${MODE} 1
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")
set(all "${out}${err}")
message("exit: ${rc} after ${seconds} s\n${all}")
if(rc STREQUAL "0" OR rc MATCHES "timeout")
  message(FATAL_ERROR "expected the job to fail promptly, got exit status '${rc}'")
endif()
if(MODE MATCHES "^--die")
  if(NOT all MATCHES "rank 1" OR NOT all MATCHES "signal 9|Killed|killed")
    message(FATAL_ERROR "expected mpirun to name rank 1 and its signal")
  endif()
else()
  if(NOT all MATCHES "test_mpi: error \\(rank 1 of 2\\): injected failure in the local search")
    message(FATAL_ERROR "expected the failing rank's message")
  endif()
endif()
