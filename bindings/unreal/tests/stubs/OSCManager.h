// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// OSCManager.h (OSC plugin), with UBlueprintFunctionLibrary (Kismet/BlueprintFunctionLibrary.h).

#pragma once

#include "CoreMinimal.h"
#include "OSCAddress.h"
#include "OSCMessage.h"
#include "UObject/Object.h"

class UOSCServer;
class UOSCClient;

class UBlueprintFunctionLibrary : public UObject
{
};

class UOSCManager : public UBlueprintFunctionLibrary
{
public:
	static UOSCServer* CreateOSCServer(FString ReceiveIPAddress, int32 Port, bool bMulticastLoopback,
		bool bStartListening, FString ServerName, UObject* Outer = nullptr);
	static UOSCClient* CreateOSCClient(FString SendIPAddress, int32 Port, FString ClientName, UObject* Outer = nullptr);

	static FOSCMessage& AddFloat(UPARAM(ref) FOSCMessage& Message, float Value);
	static FOSCMessage& AddInt32(UPARAM(ref) FOSCMessage& Message, int32 Value);
	static FOSCMessage& AddString(UPARAM(ref) FOSCMessage& Message, UPARAM(ref) FString Value);

	// Each returns whether the argument at Index exists and has that type (UE 4.x returned void).
	static bool GetFloat(const FOSCMessage& Message, const int32 Index, float& Value);
	static bool GetInt32(const FOSCMessage& Message, const int32 Index, int32& Value);
	static bool GetString(const FOSCMessage& Message, const int32 Index, FString& Value);
};
