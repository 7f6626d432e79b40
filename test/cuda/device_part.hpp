// Interface between the .cpp and .cu halves of the mixed-language test.
#pragma once

#include <string>

int cuda_device_count();
// Empty on success, else what differed.
std::string run_device_checks();
