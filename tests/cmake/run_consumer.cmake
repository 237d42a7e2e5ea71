# cmake -P driver for the packaging tests: configure, build and run one consumer
# project (tests/cmake/<kind>/) in a fresh binary directory.
#
#   -DSOURCE_DIR=<consumer project>  -DBINARY_DIR=<fresh build dir>
#   -DGENERATOR=<generator>  -DCXX_COMPILER=<path>  -DC_COMPILER=<path>
#   -DBUILD_TYPE=<type>
#   -DCONFIGURE_ARGS=<-Dx=y|-Dz=w>   extra configure arguments, '|'-separated
#   -DRUN_ARGS=<a|b>                  arguments of the consumer program, '|'-separated
foreach(_v SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_consumer.cmake: -D${_v}=... missing")
  endif()
endforeach()
string(REPLACE "|" ";" _configure_args "${CONFIGURE_ARGS}")
string(REPLACE "|" ";" _run_args "${RUN_ARGS}")

function(step name)
  string(TIMESTAMP _t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc TIMEOUT 170)
  string(TIMESTAMP _t1 "%s")
  math(EXPR _dt "${_t1} - ${_t0}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer ${name} failed (${_rc}) after ${_dt} s")
  endif()
  message(STATUS "consumer ${name}: ok (${_dt} s)")
endfunction()

file(REMOVE_RECURSE "${BINARY_DIR}")
set(_compilers "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(C_COMPILER)
  list(APPEND _compilers "-DCMAKE_C_COMPILER=${C_COMPILER}")
endif()
step(configure "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
     ${_compilers} "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" ${_configure_args})
step(build "${CMAKE_COMMAND}" --build "${BINARY_DIR}")
step(run "${BINARY_DIR}/h3co_consumer" ${_run_args})
