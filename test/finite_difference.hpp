// The central difference (f(v + h) - f(v - h)) / 2h of f with respect to
// one variable v, which is restored afterwards.
#pragma once

template <class T, class F>
double central_difference(T& v, F&& f, double h = 1e-6) {
  const T keep = v;
  v = keep + h;
  const double plus = f();
  v = keep - h;
  const double minus = f();
  v = keep;
  return (plus - minus) / (2 * h);
}
