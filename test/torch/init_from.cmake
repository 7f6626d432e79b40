# nmhash_train --arch resnet18 --init-from a torchvision state_dict (random
# weights, written by scripts/torchvision_to_safetensors.py): every backbone
# tensor loads under torchvision's names, the classifier and the batch-norm
# counters are listed as skipped, and the run trains.
if(NOT EXISTS /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz)
  message("nmhash-test-skipped: Fashion-MNIST is not installed (dataset-fashion-mnist)")
  return()
endif()
execute_process(COMMAND /usr/bin/python3 -c "import torch, torchvision" RESULT_VARIABLE have_torch OUTPUT_QUIET
  ERROR_QUIET)
if(NOT have_torch EQUAL 0)
  message("nmhash-test-skipped: PyTorch and torchvision are not installed (python3-torch, python3-torchvision)")
  return()
endif()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()
run(/usr/bin/python3 ${SCRIPT} --arch resnet18 --seed 3 --out ${WORK_DIR}/resnet18.safetensors)
run(${TO_LIST_BIN} --train-limit 48 --query-limit 8 --db-limit 32 --out ${WORK_DIR}/list)
run(${TRAIN_BIN} --dataset list:${WORK_DIR}/list --arch resnet18 --input-size 32 --channels 3 --bits 16 --epochs 1
  --batch 16 --init-from ${WORK_DIR}/resnet18.safetensors --out ${WORK_DIR}/run)
# torchvision's 122 tensors: the 100 of the backbone (weights, biases,
# running statistics) load; 22 are skipped: fc.weight, fc.bias and the 20
# num_batches_tracked counters.
foreach(expect "loaded 100 tensors, skipped 22" "skipped fc.weight: the network has no such parameter"
    "skipped layer4.1.bn2.num_batches_tracked: the network has no such parameter" "MAP tie-aware")
  string(FIND "${run_out}" "${expect}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "nmhash_train's output lacks '${expect}':\n${run_out}")
  endif()
endforeach()
foreach(refuse "not in the file" "shape [")
  string(FIND "${run_out}" "${refuse}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "a backbone tensor did not load ('${refuse}'):\n${run_out}")
  endif()
endforeach()
