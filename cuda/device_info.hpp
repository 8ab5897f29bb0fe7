// Device discovery for the CUDA module, callable from host-compiled code.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rtrl {

// (number of usable devices, why none when 0).
std::pair<int, std::string> cuda_device_status();
// "name (sm_XY)" of each device.
std::vector<std::string> cuda_device_names();

}  // namespace rtrl
