# sim.same_hash: two processes running the same seeds must end with the same line
# "N scenarios, 0 failed, trace hash H", the second in two jobs (--jobs 2): H must not depend on
# how many processes ran the seeds. -DSIM=<h3co_sim> -DSEEDS=A-B
foreach(run first second)
  if(run STREQUAL "second")
    set(_jobs --jobs 2)
  else()
    set(_jobs)
  endif()
  execute_process(COMMAND "${SIM}" --seeds "${SEEDS}" ${_jobs} OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "h3co_sim --seeds ${SEEDS} ${_jobs} failed (${_rc}):\n${_out}")
  endif()
  string(REGEX MATCH "[0-9]+ scenarios, [0-9]+ failed, trace hash [0-9a-f]+" _line_${run} "${_out}")
endforeach()
if(NOT _line_first STREQUAL _line_second OR _line_first STREQUAL "")
  message(FATAL_ERROR "not deterministic across processes (one job, then two):\n  ${_line_first}\n  ${_line_second}")
endif()
message(STATUS "${_line_first} (twice: one job, then two)")
