# nmhash_search and nmhash_eval under mpirun -np 2 and 4 write exactly
# what they write as one process: same files, byte for byte, same JSON.
include(${CMAKE_CURRENT_LIST_DIR}/run_common.cmake)
function(same a b)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${a} ${b} RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "${a} and ${b} differ")
  endif()
endfunction()

run(${TEST_BIN} --write-fixtures ${WORK_DIR})
set(d ${WORK_DIR})
foreach(db db_codes.npy db.nmhidx)
  foreach(method flat mih)
    run(${SEARCH_BIN} --query ${d}/q_codes.npy --db ${d}/${db} --bits 40 --k 60 --method ${method} --out ${d}/one)
    foreach(np 2 4)
      run(${MPIEXEC} ${NP_FLAG} ${np} ${SEARCH_BIN} --query ${d}/q_codes.npy --db ${d}/${db} --bits 40 --k 60
          --method ${method} --out ${d}/np${np})
      if(NOT run_out MATCHES "on ${np} ranks")
        message(FATAL_ERROR "nmhash_search under ${np} ranks did not report them:\n${run_out}")
      endif()
      same(${d}/one_D.npy ${d}/np${np}_D.npy)
      same(${d}/one_I.npy ${d}/np${np}_I.npy)
    endforeach()
  endforeach()
endforeach()

# Filtered: an allow-list of positions over the .npy database, a deny-list
# of stored ids over the index file.
function(filtered db filter file)
  foreach(method flat mih)
    run(${SEARCH_BIN} --query ${d}/q_codes.npy --db ${d}/${db} --bits 40 --k 60 --method ${method} ${filter} ${file}
        --out ${d}/fone)
    if(NOT run_out MATCHES "filter: [0-9]+ of 3001 codes admitted")
      message(FATAL_ERROR "nmhash_search ${filter} did not report the admitted codes:\n${run_out}")
    endif()
    foreach(np 2 4)
      run(${MPIEXEC} ${NP_FLAG} ${np} ${SEARCH_BIN} --query ${d}/q_codes.npy --db ${d}/${db} --bits 40 --k 60
          --method ${method} ${filter} ${file} --out ${d}/fnp${np})
      same(${d}/fone_D.npy ${d}/fnp${np}_D.npy)
      same(${d}/fone_I.npy ${d}/fnp${np}_I.npy)
    endforeach()
  endforeach()
endfunction()
filtered(db_codes.npy --allow-ids ${d}/allow_positions.npy)
filtered(db.nmhidx --deny-ids ${d}/deny_ids.npy)

set(eval_args --query-codes ${d}/q_codes.npy --db-codes ${d}/db_codes.npy --query-labels ${d}/q_labels.npy
    --db-labels ${d}/db_labels.npy --bits 40 --topk 100 --radius 3 --loo --json)
run(${EVAL_BIN} ${eval_args})
set(one "${run_out}")
foreach(np 2 4)
  run(${MPIEXEC} ${NP_FLAG} ${np} ${EVAL_BIN} ${eval_args})
  if(NOT run_out STREQUAL one)
    message(FATAL_ERROR "nmhash_eval under ${np} ranks:\n${run_out}\ndiffers from one process:\n${one}")
  endif()
endforeach()
message("nmhash_search (flat, mih; .npy and index; unfiltered and filtered) and nmhash_eval --loo match one process on 2 and 4 ranks")
