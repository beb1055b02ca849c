#include "digits/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include "digits/error.hpp"

namespace digits {

double learning_rate_at(const Schedule& s, double base, double progress, int total_epochs) {
  if (s.warmup_epochs > 0 && progress < s.warmup_epochs) return base * progress / s.warmup_epochs;
  const double after_warmup = progress - s.warmup_epochs;
  switch (s.kind) {
    case Schedule::Kind::constant: return base;
    case Schedule::Kind::step: return base * std::pow(s.step_factor, std::floor(after_warmup / s.step_every));
    case Schedule::Kind::cosine: {
      const double span = std::max(total_epochs - s.warmup_epochs, 1e-9);
      const double t = std::clamp(after_warmup / span, 0.0, 1.0);
      return base * (s.final_fraction + (1 - s.final_fraction) * 0.5 * (1 + std::cos(std::numbers::pi * t)));
    }
  }
  return base;
}

namespace {

double number(const std::string& part, const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(part, &used);
    if (used == part.size() && std::isfinite(value) && value >= 0) return value;
  } catch (const std::exception&) {
  }
  throw Error("schedule '" + text + "': '" + part + "' is not a non-negative number");
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

}  // namespace

Schedule parse_schedule(std::string_view view) {
  const std::string text(view);
  Schedule schedule;
  const std::vector<std::string> clauses = split(text, ',');
  if (clauses.empty()) throw Error("empty schedule (expected constant, step:EVERY:FACTOR or cosine[:FINAL], optionally ,warmup:EPOCHS)");
  for (std::size_t i = 0; i < clauses.size(); ++i) {
    const std::vector<std::string> fields = split(clauses[i], ':');
    const std::string name = fields.empty() ? "" : fields[0];
    if (i == 0 && name == "constant" && fields.size() == 1) {
      schedule.kind = Schedule::Kind::constant;
    } else if (i == 0 && name == "step" && fields.size() == 3) {
      schedule.kind = Schedule::Kind::step;
      schedule.step_every = number(fields[1], text);
      schedule.step_factor = number(fields[2], text);
      if (schedule.step_every <= 0) throw Error("schedule '" + text + "': steps must be at least some epochs apart");
    } else if (i == 0 && name == "cosine" && fields.size() <= 2) {
      schedule.kind = Schedule::Kind::cosine;
      if (fields.size() == 2) schedule.final_fraction = number(fields[1], text);
    } else if (i > 0 && name == "warmup" && fields.size() == 2) {
      schedule.warmup_epochs = number(fields[1], text);
    } else {
      throw Error("schedule '" + text + "': cannot read '" + clauses[i] +
                  "' (expected constant, step:EVERY:FACTOR or cosine[:FINAL], optionally ,warmup:EPOCHS)");
    }
  }
  return schedule;
}

std::string describe(const Schedule& s) {
  std::ostringstream out;
  switch (s.kind) {
    case Schedule::Kind::constant: out << "constant"; break;
    case Schedule::Kind::step: out << "step:" << s.step_every << ":" << s.step_factor; break;
    case Schedule::Kind::cosine: out << "cosine:" << s.final_fraction; break;
  }
  if (s.warmup_epochs > 0) out << ",warmup:" << s.warmup_epochs;
  return out.str();
}

}  // namespace digits
