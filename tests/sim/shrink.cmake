# sim.shrink: the shrinker on an injected failure (h3co_sim's hidden --inject-failure: a trailers
# body read to its end fails the scenario). It must end with a reproduction of fewer items than
# the scenario had, and that reproduction, replayed, must fail the same way.
# -DSIM=<h3co_sim> -DSEED=S
execute_process(COMMAND "${SIM}" --seed "${SEED}" --inject-failure --shrink OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "h3co_sim --seed ${SEED} --inject-failure --shrink failed (${_rc}):\n${_out}")
endif()
if(NOT _out MATCHES "shrunk seed ${SEED} from ([0-9]+) to ([0-9]+) items")
  message(FATAL_ERROR "no shrink result:\n${_out}")
endif()
set(_from "${CMAKE_MATCH_1}")
set(_to "${CMAKE_MATCH_2}")
if(NOT _to LESS _from OR _to EQUAL 0)
  message(FATAL_ERROR "not shrunk: ${_from} items to ${_to}:\n${_out}")
endif()
if(NOT _out MATCHES "--only ([0-9,-]+) --trace")
  message(FATAL_ERROR "no replay command:\n${_out}")
endif()
execute_process(COMMAND "${SIM}" --seed "${SEED}" --inject-failure --only "${CMAKE_MATCH_1}"
                OUTPUT_VARIABLE _replay RESULT_VARIABLE _rc)
if(_rc EQUAL 0 OR NOT _replay MATCHES "injected failure")
  message(FATAL_ERROR "the shrunk reproduction does not fail the same way (${_rc}):\n${_replay}")
endif()
message(STATUS "shrunk seed ${SEED} from ${_from} to ${_to} items; the replay fails the same way")
