package exporterhelper

import (
	"log/slog"
	"testing"
)

func TestExporterSettingsSender(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics(nil)
	got := ExporterSettings{Logger: log, QueueMetrics: m, Name: "tempo"}.Sender()
	if got != (Settings{Name: "tempo", Logger: log, Metrics: m}) {
		t.Errorf("Sender() = %+v", got)
	}
}
