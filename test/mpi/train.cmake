# nmhash_train under mpirun: data parallel over 2 ranks with the
# one-process MAP within the stated tolerance (0.002), and a checkpoint
# written on 2 ranks resumed on 4; nmhash_reproduce on 2 ranks against one
# process. (Repeatability for a fixed number of ranks: test_mpi_training.cpp.)
include(${CMAKE_CURRENT_LIST_DIR}/run_common.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/map_close.cmake)

set(common --reduce-from 16 --bits 8 --merges 4 --active-epochs 1 --frozen-epochs 1 --batch 50
    --train-limit 400 --query-limit 200 --db-limit 2000 --seed 3)
run(${TRAIN_BIN} ${common} --epochs 1 --out ${WORK_DIR}/one)
run(${MPIEXEC} ${NP_FLAG} 2 ${TRAIN_BIN} ${common} --epochs 1 --out ${WORK_DIR}/np2)
if(NOT run_out MATCHES "data parallel over 2 ranks")
  message(FATAL_ERROR "nmhash_train under 2 ranks did not report them:\n${run_out}")
endif()
map_of(${WORK_DIR}/one m1)
map_of(${WORK_DIR}/np2 m2)
close(${m2} ${m1} "progressive, 2 ranks against one process")

# Fixed length: 1 epoch on 2 ranks, continued to 2 epochs on 4 ranks.
set(fixed --bits 12 --batch 50 --train-limit 400 --query-limit 200 --db-limit 2000 --seed 3)
run(${TRAIN_BIN} ${fixed} --epochs 2 --out ${WORK_DIR}/fixed-one)
run(${MPIEXEC} ${NP_FLAG} 2 ${TRAIN_BIN} ${fixed} --epochs 1 --out ${WORK_DIR}/fixed-res)
run(${MPIEXEC} ${NP_FLAG} 4 ${TRAIN_BIN} ${fixed} --epochs 2 --out ${WORK_DIR}/fixed-res)
if(NOT run_err MATCHES "resuming from .* after epoch 1")
  message(FATAL_ERROR "the 4-rank run did not resume from the 2-rank checkpoint:\n${run_out}${run_err}")
endif()
map_of(${WORK_DIR}/fixed-one f1)
map_of(${WORK_DIR}/fixed-res f4)
close(${f4} ${f1} "fixed length, 2 ranks then 4 (resumed) against one process")

# nmhash_reproduce: NMLayer and baselines on 2 ranks, each run's final MAP
# against one process.
set(repro --train-limit 200 --query-limit 40 --db-limit 400 --warmup-epochs 1 --variants nmlayer,baseline
    --ablation-lengths 32)
run(${REPRODUCE_BIN} ${repro} --out ${WORK_DIR}/repro-one)
run(${MPIEXEC} ${NP_FLAG} 2 ${REPRODUCE_BIN} ${repro} --out ${WORK_DIR}/repro-np2)
if(NOT run_out MATCHES "data parallel over 2 ranks")
  message(FATAL_ERROR "nmhash_reproduce under 2 ranks did not report them:\n${run_out}")
endif()
file(READ ${WORK_DIR}/repro-one/seed-1/results.json j1)
file(READ ${WORK_DIR}/repro-np2/seed-1/results.json j2)
string(JSON runs LENGTH "${j1}" runs)
math(EXPR last "${runs} - 1")
foreach(i RANGE ${last})
  string(JSON id GET "${j1}" runs ${i} id)
  string(JSON n LENGTH "${j1}" runs ${i} reports)
  math(EXPR n "${n} - 1")
  string(JSON a GET "${j2}" runs ${i} reports ${n} map_tie_aware)
  string(JSON b GET "${j1}" runs ${i} reports ${n} map_tie_aware)
  close(${a} ${b} "nmhash_reproduce ${id}, 2 ranks against one process")
endforeach()
