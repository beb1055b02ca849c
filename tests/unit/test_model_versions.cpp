// Numbered model versions: each add is a new file and the new current; list reads what each file
// records; rollback moves current back (to a parent, a named version, or 0) and refuses versions
// that do not exist.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "digits/error.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/storage_error.hpp"

using namespace digits;
using namespace digits::feedback;
namespace fs = std::filesystem;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

class Versions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-versions-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string read_text(const fs::path& path) const {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir;  // the state directory (not created: add() must make what it needs)
};

// A small network whose weights say which one it is.
Network network_number(int n) {
  Network network({6, 4, 3}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, static_cast<std::uint64_t>(n));
  return network;
}

Metadata learned(double validation, long corrections, std::int64_t last_id = 0) {
  Metadata metadata{{"note", "kept"}};
  record_learning(metadata, validation, corrections, last_id);
  return metadata;
}

}  // namespace

TEST_F(Versions, AnEmptyStateDirectoryHasVersionZeroAndNothingSaved) {
  ModelVersions versions(dir);
  EXPECT_EQ(versions.current(), 0);
  EXPECT_TRUE(versions.list().empty());
  EXPECT_FALSE(fs::exists(dir)) << "reading must not create anything";
}

TEST_F(Versions, AddSavesNumberedFilesAndMovesCurrent) {
  ModelVersions versions(dir);
  EXPECT_EQ(versions.add(network_number(1), learned(0.9912, 12, 40)), 1);
  EXPECT_EQ(versions.current(), 1);
  EXPECT_EQ(versions.add(network_number(2), learned(0.9908, 30, 95)), 2);
  EXPECT_EQ(versions.current(), 2);
  EXPECT_TRUE(fs::is_regular_file(dir / "models" / "v0001.safetensors"));
  EXPECT_TRUE(fs::is_regular_file(dir / "models" / "v0002.safetensors"));
  EXPECT_EQ(versions.file(2), dir / "models" / "v0002.safetensors");
  EXPECT_EQ(read_text(dir / "models" / "current"), "2\n");

  // What was saved is what comes back, with the version facts in its metadata.
  const Model loaded = versions.load(1);
  EXPECT_EQ(std::get<DenseLayer>(loaded.network.layers[0]).W, std::get<DenseLayer>(network_number(1).layers[0]).W);
  EXPECT_EQ(loaded.metadata.at("note"), "kept");
  EXPECT_EQ(loaded.metadata.at(kVersionKey), "1");
  EXPECT_EQ(loaded.metadata.at(kParentKey), "0");
  EXPECT_EQ(loaded.metadata.at(kValidationAccuracyKey), "99.12");
  EXPECT_EQ(loaded.metadata.at(kCorrectionsLearnedKey), "12");
  EXPECT_EQ(loaded.metadata.at(kLastJudgementKey), "40");
  EXPECT_FALSE(loaded.metadata.at("created").empty());
  EXPECT_EQ(versions.load(2).metadata.at(kParentKey), "1");
}

TEST_F(Versions, ListReportsWhatEachFileRecordsOldestFirst) {
  ModelVersions versions(dir);
  Metadata first = learned(0.9912, 12, 40);
  first["created"] = "2026-01-02T03:04:05Z";
  versions.add(network_number(1), first);
  versions.add(network_number(2), learned(0.9908, 30, 95));
  const std::vector<VersionInfo> list = versions.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].version, 1);
  EXPECT_EQ(list[0].created, "2026-01-02T03:04:05Z");
  EXPECT_EQ(list[0].parent, 0);
  EXPECT_DOUBLE_EQ(list[0].validation_accuracy, 0.9912);
  EXPECT_EQ(list[0].corrections_learned, 12);
  EXPECT_EQ(list[0].last_judgement_id, 40);
  EXPECT_FALSE(list[0].current);
  EXPECT_TRUE(list[0].problem.empty());
  EXPECT_EQ(list[1].version, 2);
  EXPECT_EQ(list[1].parent, 1);
  EXPECT_DOUBLE_EQ(list[1].validation_accuracy, 0.9908);
  EXPECT_EQ(list[1].corrections_learned, 30);
  EXPECT_TRUE(list[1].current);
}

TEST_F(Versions, AVersionWithoutLearningFactsListsThemAsUnknown) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  const VersionInfo info = versions.list().at(0);
  EXPECT_EQ(info.validation_accuracy, -1);
  EXPECT_EQ(info.corrections_learned, 0);
}

TEST_F(Versions, ACorruptFileIsListedWithItsProblemAndRefusedByLoadAndRollback) {
  ModelVersions versions(dir);
  versions.add(network_number(1), learned(0.99, 1));
  versions.add(network_number(2), learned(0.99, 2));
  { std::ofstream(versions.file(1), std::ios::binary) << "garbage"; }
  const std::vector<VersionInfo> list = versions.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_CONTAINS(list[0].problem, "v0001.safetensors");
  EXPECT_TRUE(list[1].problem.empty());
  EXPECT_THROW(versions.load(1), Error);
  try {
    versions.rollback(1);
    FAIL() << "rolled back to a corrupt file";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::corrupt) << "the storage's fault, not the caller's";
    EXPECT_CONTAINS(e.what(), "v0001.safetensors");
  }
  EXPECT_EQ(versions.current(), 2) << "a failed rollback must leave current alone";
}

TEST_F(Versions, OtherFilesInTheFolderAreIgnored) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  for (const char* name : {"v0.safetensors", "vx.safetensors", "notes.txt", ".v0002.safetensors.ab12Cd", "v0003.safetensors.bak"})
    std::ofstream(dir / "models" / name) << "x";
  ASSERT_EQ(versions.list().size(), 1u);
  EXPECT_EQ(versions.add(network_number(2), {}), 2);
}

TEST_F(Versions, RollbackWithoutAVersionGoesToTheParent) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  versions.add(network_number(2), {});
  versions.add(network_number(3), {});
  EXPECT_EQ(versions.rollback(), 2);
  EXPECT_EQ(versions.current(), 2);
  EXPECT_EQ(read_text(dir / "models" / "current"), "2\n");
  // Learning from version 2 again makes version 4, whose parent is 2 (not 3, which was rolled back).
  EXPECT_EQ(versions.add(network_number(4), {}), 4);
  EXPECT_EQ(versions.load(4).metadata.at(kParentKey), "2");
  EXPECT_EQ(versions.rollback(), 2);
  EXPECT_EQ(versions.rollback(), 1);
  EXPECT_EQ(versions.rollback(), 0);
  EXPECT_EQ(versions.current(), 0);
  try {
    versions.rollback();
    FAIL() << "rolled back past version 0";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "already current");
  }
  EXPECT_EQ(versions.list().size(), 4u) << "rollback deletes nothing";
}

TEST_F(Versions, RollbackToANamedVersionOrToZero) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  versions.add(network_number(2), {});
  EXPECT_EQ(versions.rollback(0), 0);
  EXPECT_EQ(versions.current(), 0);
  EXPECT_EQ(versions.rollback(2), 2) << "forward again to a saved version is allowed";
  EXPECT_EQ(versions.rollback(1), 1);
  EXPECT_EQ(versions.current(), 1);
  EXPECT_FALSE(versions.list()[1].current);
  EXPECT_TRUE(versions.list()[0].current);
}

TEST_F(Versions, RollbackToAMissingVersionIsRefusedNamingTheSavedOnes) {
  ModelVersions versions(dir);
  try {
    versions.rollback(3);
    FAIL() << "rolled back to a version that was never saved";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "version 3 does not exist");
    EXPECT_CONTAINS(e.what(), "no versions are saved");
  }
  versions.add(network_number(1), {});
  versions.add(network_number(2), {});
  try {
    versions.rollback(7);
    FAIL() << "rolled back to a version that was never saved";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "version 7 does not exist");
    EXPECT_CONTAINS(e.what(), "saved: 1, 2");
  }
  EXPECT_THROW(versions.rollback(-1), Error);
  EXPECT_EQ(versions.current(), 2);
}

TEST_F(Versions, LoadingAMissingVersionNamesTheFile) {
  ModelVersions versions(dir);
  try {
    versions.load(5);
    FAIL() << "loaded a missing version";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "v0005.safetensors");
  }
  EXPECT_THROW(versions.load(0), Error);
}

TEST_F(Versions, AGarbledCurrentFileIsAnErrorNamingIt) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  std::ofstream(dir / "models" / "current") << "seven";
  try {
    versions.current();
    FAIL() << "read a garbled current file";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "current");
    EXPECT_CONTAINS(e.what(), "seven");
  }
  // The versions are still listed (the server falls back on them), none of them as current.
  const std::vector<VersionInfo> listed = versions.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_FALSE(listed[0].current);
  EXPECT_TRUE(listed[0].problem.empty());
  // Rolling back to its parent needs current; naming a version repairs it.
  EXPECT_THROW(versions.rollback(), StorageError);
  EXPECT_EQ(versions.rollback(1), 1);
  EXPECT_EQ(versions.current(), 1);
}

TEST_F(Versions, NumbersContinuePastRollbackAndNeverReuseAFile) {
  ModelVersions versions(dir);
  versions.add(network_number(1), {});
  versions.add(network_number(2), {});
  versions.rollback(0);
  EXPECT_EQ(versions.add(network_number(3), {}), 3);
  EXPECT_EQ(versions.load(3).metadata.at(kParentKey), "0");
  EXPECT_EQ(std::get<DenseLayer>(versions.load(2).network.layers[0]).W, std::get<DenseLayer>(network_number(2).layers[0]).W) << "version 2 was overwritten";
}
