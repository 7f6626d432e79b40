# map_of(DIR VAR): the tie-aware MAP in DIR/summary.json; close(A B WHAT):
# fails unless |A - B| <= 0.002, the stated tolerance of data-parallel
# training against one process.
function(map_of dir var)
  file(READ ${dir}/summary.json j)
  string(JSON m GET "${j}" map tie_aware)
  set(${var} ${m} PARENT_SCOPE)
endfunction()
function(close a b what)
  # |a - b| <= 0.002 in CMake's integer arithmetic: compare in units of 1e-6.
  foreach(v a b)
    string(REGEX MATCH "^([0-9]+)\\.([0-9]*)" _ "${${v}}")
    string(SUBSTRING "${CMAKE_MATCH_2}000000" 0 6 frac)
    math(EXPR ${v}_u "${CMAKE_MATCH_1} * 1000000 + 1${frac} - 1000000")
  endforeach()
  math(EXPR d "${a_u} - ${b_u}")
  if(d LESS 0)
    math(EXPR d "-${d}")
  endif()
  if(d GREATER 2000)
    message(FATAL_ERROR "${what}: MAP ${a} vs ${b} differ by more than 0.002")
  endif()
  message("${what}: MAP ${a} vs ${b}")
endfunction()
