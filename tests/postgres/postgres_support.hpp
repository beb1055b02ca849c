// The throwaway PostgreSQL that the ctest fixture `postgres` starts (tests/postgres/server): its
// connection string, and a fresh database for each test. Without the fixture (a test binary run
// by hand, without DIGITS_TEST_POSTGRES), the tests that need it are skipped, saying why.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace digits::test {

// The maintenance database, as the cluster's superuser; "" when no server was started.
inline std::string postgres_admin() {
  const char* state = std::getenv("DIGITS_TEST_POSTGRES");
  if (!state || !*state) return "";
  std::ifstream in(std::string(state) + "/conninfo");
  std::string conninfo;
  std::getline(in, conninfo);
  return conninfo;
}

#define REQUIRE_POSTGRES()                                                                                             \
  do {                                                                                                                 \
    if (::digits::test::postgres_admin().empty())                                                                      \
      GTEST_SKIP() << "no test PostgreSQL: run through ctest (fixture postgres), or set DIGITS_TEST_POSTGRES to its state folder"; \
  } while (0)

// Runs SQL as the superuser on `conninfo`; throws with PostgreSQL's message when it fails.
inline void postgres_run(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    const std::string why = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot connect to the test PostgreSQL: " + why);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType status = PQresultStatus(r);
  const std::string why = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + why);
}

// The first column of the first row, as text ("" for none).
inline std::string postgres_value(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  PGresult* r = PQexec(c, sql.c_str());
  std::string value;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
  const bool failed = PQresultStatus(r) != PGRES_TUPLES_OK;
  const std::string why = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (failed) throw std::runtime_error(sql + ": " + why);
  return value;
}

// A new, empty database named `name` (dropped first if a failed run left it); its connection string.
inline std::string fresh_database(const std::string& name) {
  const std::string admin = postgres_admin();
  postgres_run(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  postgres_run(admin, "CREATE DATABASE " + name);
  return admin + " dbname=" + name;  // a later keyword overrides the earlier one
}

// The database of the running test, named after it: lowercase letters, digits and _.
inline std::string test_database() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("t_") + info->test_suite_name() + "_" + info->name();
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '_';
  return fresh_database(name.substr(0, 63));
}

}  // namespace digits::test
