// The same check from C++: the headers are C++-clean and extern "C".
#include <sgdlab/sgdlab.h>

#include <iostream>
#include <string>

int main()
{
    std::string lib = sgd_version_string();
    std::cout << "headers " << SGD_VERSION_STRING << ", library " << lib << "\n";
    return lib == SGD_VERSION_STRING ? 0 : 1;
}
