# sim.same_hash: two processes running the same seeds must end with the same line
# "N scenarios, 0 failed, trace hash H". -DSIM=<h3co_sim> -DSEEDS=A-B
foreach(run first second)
  execute_process(COMMAND "${SIM}" --seeds "${SEEDS}" OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "h3co_sim --seeds ${SEEDS} failed (${_rc}):\n${_out}")
  endif()
  string(REGEX MATCH "[0-9]+ scenarios, [0-9]+ failed, trace hash [0-9a-f]+" _line_${run} "${_out}")
endforeach()
if(NOT _line_first STREQUAL _line_second OR _line_first STREQUAL "")
  message(FATAL_ERROR "not deterministic across processes:\n  ${_line_first}\n  ${_line_second}")
endif()
message(STATUS "${_line_first} (twice)")
