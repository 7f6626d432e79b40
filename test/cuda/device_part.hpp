// Interface between the .cpp and .cu halves of the mixed-language test.
#pragma once

#include <string>

int cuda_device_count();
// Empty on success, else what differed.
std::string run_device_checks();
// The training path (gpu::network, the device losses and optimizers)
// against the CPU library.
std::string run_training_checks();
