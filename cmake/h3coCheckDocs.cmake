# ctest docs.api_reference: builds the h3co_docs target, which fails on any Doxygen warning,
# then checks that the main page and the pages of the central classes were written.
#   cmake -DBUILD_DIR=<build> -DHTML_DIR=<build>/docs/api/html -P h3coCheckDocs.cmake
cmake_minimum_required(VERSION 3.20)

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target h3co_docs
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "h3co_docs failed (${result}): Doxygen's warnings are above")
endif()

# Doxygen's file names: "::" becomes "_1_1", "_" becomes "__".
foreach(page IN ITEMS
    index.html
    classh3co_1_1basic__client.html
    classh3co_1_1basic__request__stream.html
    classh3co_1_1basic__http__stream.html
    classh3co_1_1basic__server.html
    structh3co_1_1connection__options.html)
  if(NOT EXISTS "${HTML_DIR}/${page}")
    message(FATAL_ERROR "API reference page missing: ${HTML_DIR}/${page}")
  endif()
endforeach()
message(STATUS "API reference: ${HTML_DIR}/index.html")
